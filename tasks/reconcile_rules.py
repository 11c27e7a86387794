"""Reconciliation rules: `config/reconcile.yaml` (HOOPFLOW_RECONCILE_FILE), typed. Which rules
exist, what each compares (its entity and feeds) and which fields, is code (RULES below, the
comparisons in tasks/reconcile.py); the file sets each field's tolerance and severity and the
quality score's weights. Everything is checked when loaded: an unknown rule, field or key is an
error, and so is a rule or field the file leaves out (none is silently off)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from blocks.settings import get_settings
from engine.thresholds import Severity

# The four feeds, as named in nba_ops.discrepancies (`<feed>_value`).
FEEDS = ("box", "shot_chart", "schedule", "espn")


@dataclass(frozen=True)
class Rule:
    entity: str  # game | team | player
    feeds: tuple[str, ...]  # compared, the first is the reference (difference = it − the furthest other)
    fields: tuple[str, ...]  # NBA.com box columns, lower-case
    description: str


RULES: dict[str, Rule] = {
    "shot_chart": Rule("player", ("box", "shot_chart"), ("fga", "fgm", "fg3a", "fg3m", "pts"),
                       "box score vs shot chart: FGA = attempts, FGM = makes, FG3A/FG3M = 3PT attempts/makes, "
                       "PTS = 2·made 2s + 3·made 3s + FTM"),
    "team_points": Rule("team", ("box", "schedule", "espn"), ("pts",),
                        "Σ player PTS = the schedule's final score = ESPN's team_score"),
    "espn_team_totals": Rule("team", ("box", "espn"),
                             ("fgm", "fga", "fg3m", "fg3a", "ftm", "fta", "oreb", "dreb", "reb", "ast", "stl",
                              "blk", "tov", "pf"),
                             "Σ player box = ESPN's team totals"),
    "overtime": Rule("game", ("schedule", "shot_chart", "box"), ("num_ot",),
                     "the schedule's NUM_OT = the shot chart's last period − 4 = the overtimes in team minutes"),
    "teams_present": Rule("game", ("schedule", "box", "shot_chart", "espn"), ("team_id",),
                          "both teams of the game in every feed"),
    "provider_game": Rule("game", ("schedule", "espn"), ("game_id",), "NBA.com and ESPN list the game once each"),
}  # fmt: skip


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldRule(_Strict):
    tolerance: float = Field(ge=0)
    severity: Severity
    critical_above: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _above_tolerance(self) -> FieldRule:
        if self.critical_above is not None and self.critical_above < self.tolerance:
            raise ValueError(f"critical_above {self.critical_above:g} < tolerance {self.tolerance:g}")
        return self

    def severity_of(self, difference: float) -> Severity | None:
        """The finding's severity for a difference, or None when it is within tolerance."""
        gap = abs(difference)
        if gap <= self.tolerance:
            return None
        if self.critical_above is not None and gap > self.critical_above:
            return "critical"
        return self.severity


class Buckets(_Strict):
    high: float = Field(ge=0, le=100)
    medium: float = Field(ge=0, le=100)

    def of(self, score: float) -> str:
        return "high" if score >= self.high else "medium" if score >= self.medium else "low"


class ReconcileConfig(_Strict):
    rules: dict[str, dict[str, FieldRule]]
    weights: dict[Severity, float]
    buckets: Buckets

    @model_validator(mode="after")
    def _every_rule_and_field(self) -> ReconcileConfig:
        unknown = sorted(set(self.rules) - set(RULES))
        missing = sorted(set(RULES) - set(self.rules))
        if unknown or missing:
            raise ValueError(f"rules: unknown {unknown}, missing {missing}; the rules are {sorted(RULES)}")
        for name, fields in self.rules.items():
            unknown = sorted(set(fields) - set(RULES[name].fields))
            missing = sorted(set(RULES[name].fields) - set(fields))
            if unknown or missing:
                raise ValueError(f"rules.{name}: unknown fields {unknown}, missing {missing}; "
                                 f"it compares {list(RULES[name].fields)}")  # fmt: skip
        if set(self.weights) != {"critical", "warning", "info"}:
            raise ValueError("weights: give critical, warning and info")
        if self.buckets.medium > self.buckets.high:
            raise ValueError("buckets: medium above high")
        return self

    def field(self, rule: str, field: str) -> FieldRule:
        return self.rules[rule][field]


class ReconcileConfigError(ValueError):
    """The rules file cannot be used: names the file and what is wrong."""


@lru_cache(maxsize=4)
def _load(path: Path, mtime_ns: int) -> ReconcileConfig:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        return ReconcileConfig.model_validate(raw)
    except (yaml.YAMLError, ValidationError, TypeError) as exc:
        raise ReconcileConfigError(f"{path}: {exc}") from exc


def load_rules(path: Path | None = None) -> ReconcileConfig:
    """The rules in force (the settings' file unless `path`), read once per file version."""
    path = Path(path or get_settings().reconcile_file)
    return _load(path, path.stat().st_mtime_ns)


def rules_text() -> str:
    """The rules in force as text: part of the reconcile processors' code version, so a
    changed tolerance or severity re-evaluates every date."""
    return load_rules().model_dump_json()
