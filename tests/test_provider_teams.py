"""config/provider_teams.yaml against the bundled 2023-24 season: each ESPN team is the
NBA.com team it plays as, found by matching games on the date and the two final scores alone
(never through the table or its abbreviations)."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from blocks.settings import REPO_ROOT

DATA = REPO_ROOT / "data"


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return pd.DataFrame(yaml.safe_load((REPO_ROOT / "config" / "provider_teams.yaml").read_text())["teams"])


@pytest.fixture(scope="module")
def matched() -> pd.DataFrame:
    """ESPN team-game rows beside the NBA.com side they played, matched on the US-Eastern
    date, home/away and both final scores (games with a twin of the same date and scores are
    left out)."""
    espn = pd.read_csv(DATA / "espn" / "2023-24" / "team_box.csv.gz")
    nba = pd.read_csv(DATA / "nba" / "2023-24" / "schedule.csv.gz")
    sides = pd.concat([
        nba.assign(home_away="home", team_id=nba.HOME_TEAM_ID, abbr=nba.HOME_TEAM_ABBREVIATION,
                   score=nba.HOME_PTS, opp_score=nba.AWAY_PTS),
        nba.assign(home_away="away", team_id=nba.AWAY_TEAM_ID, abbr=nba.AWAY_TEAM_ABBREVIATION,
                   score=nba.AWAY_PTS, opp_score=nba.HOME_PTS),
    ])[["GAME_DATE", "home_away", "score", "opp_score", "team_id", "abbr"]]  # fmt: skip
    key = ["GAME_DATE", "home_away", "score", "opp_score"]
    sides = sides[~sides.duplicated(key, keep=False)]
    espn = espn.rename(columns={"game_date": "GAME_DATE", "team_home_away": "home_away", "team_score": "score",
                                "opponent_team_score": "opp_score"})  # fmt: skip
    espn = espn[~espn.duplicated(key, keep=False)]
    return espn.merge(sides, on=key, how="inner", suffixes=("_espn", "_nba"))


def test_the_table_maps_the_thirty_teams_one_to_one(table: pd.DataFrame) -> None:
    assert len(table) == 30
    for col in ("nba_team_id", "nba", "espn_team_id", "espn"):
        assert table[col].is_unique, col


def test_each_espn_team_is_the_nba_team_it_played_as(table: pd.DataFrame, matched: pd.DataFrame) -> None:
    assert len(matched) > 2400  # nearly every team-game has a unique (date, side, scores)
    played = matched.groupby("team_id_espn").team_id_nba.unique()
    assert all(len(ids) == 1 for ids in played), played[played.map(len) > 1]
    assert dict(zip(table.espn_team_id, table.nba_team_id, strict=True)) == {k: v[0] for k, v in played.items()}
    # ... and each provider's abbreviation in the table is the one its own file uses
    espn_abbr = matched.groupby("team_id_espn").team_abbreviation.unique()
    nba_abbr = matched.groupby("team_id_nba").abbr.unique()
    for row in table.itertuples():
        assert list(espn_abbr[row.espn_team_id]) == [row.espn]
        assert list(nba_abbr[row.nba_team_id]) == [row.nba]


def test_the_six_abbreviations_that_differ(table: pd.DataFrame) -> None:
    differ = table[table.nba != table.espn]
    assert dict(zip(differ.espn, differ.nba, strict=True)) == {
        "GS": "GSW", "NO": "NOP", "NY": "NYK", "SA": "SAS", "UTAH": "UTA", "WSH": "WAS",
    }  # fmt: skip
