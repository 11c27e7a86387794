"""The team table of the providers (config/provider_teams.yaml): each team's NBA.com and ESPN
id and abbreviation, typed; how ESPN rows are checked at load and mapped to NBA.com games."""

from __future__ import annotations

from functools import cache

import yaml
from pydantic import BaseModel, ConfigDict

from blocks.settings import REPO_ROOT

PROVIDER_TEAMS_FILE = REPO_ROOT / "config" / "provider_teams.yaml"


class ProviderTeam(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    nba_team_id: int
    nba: str
    espn_team_id: int
    espn: str


@cache
def provider_teams() -> tuple[ProviderTeam, ...]:
    """The 30 teams; an unknown key, a missing field or an id listed twice is an error."""
    raw = yaml.safe_load(PROVIDER_TEAMS_FILE.read_text(encoding="utf-8"))
    teams = tuple(ProviderTeam(**t) for t in raw["teams"])
    for field in ("nba_team_id", "nba", "espn_team_id", "espn"):
        values = [getattr(t, field) for t in teams]
        if len(set(values)) != len(values):
            raise ValueError(f"{PROVIDER_TEAMS_FILE}: {field} listed twice")
    return teams


@cache
def team_lookup(key: str, value: str) -> dict[int | str, int | str]:
    """One field of the team table by another, e.g. `team_lookup("espn_team_id", "nba_team_id")`."""
    return {getattr(t, key): getattr(t, value) for t in provider_teams()}
