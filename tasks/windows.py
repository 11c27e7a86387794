"""Set-based windows: the history parts of player_game_context and of the precompute tables
as SQL window functions run by the warehouse, returning only the date's rows.

The pandas formulas (tasks/analytics.py, tasks/precompute.py) read a season's whole history
for every date, so a season costs the square of its dates; these functions send one query
per history-based table instead, and the warehouse numbers each player's (team's) earlier
games of the season, newest first (`ROW_NUMBER() OVER (PARTITION BY … ORDER BY game_date
DESC, game_id DESC)`, the order `_before` sorts by), and aggregates the last N of them.
Each `<table>_rows(wh, game_date, season)` returns the frame the current task's compute
returns (the `season` column included; row order aside), value for value.

The SQL lives in tasks/sql/<table>.sql (`SQL_FILES`), written once for DuckDB and BigQuery:
`dataset.table` names and `@name` parameters (Warehouse.render / translate_params), window
functions, conditional aggregates `AVG(CASE WHEN k <= 10 THEN x END)`, `x / NULLIF(y, 0)`
(BigQuery fails on a division by zero, DuckDB returns inf), no casts. Date arithmetic stays
in Python: the window starts (`@since_7`, `@league_since`, …) are parameters, days of rest
are computed from the last game date on the date's rows; the one date expression in SQL,
`DATE_ADD(d, INTERVAL 1 DAY)`, is spelled the same in both.

player_composite_factors and ml_feature_store keep their pandas formulas over the date's
precompute rows (small reads); the composite's history part (team form, league pace) comes
from team_form.sql.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import cache
from pathlib import Path

import pandas as pd

from blocks.warehouse import Warehouse
from tasks.analytics import PLAYER_GAME_CONTEXT, PLAYER_GAME_SUMMARY
from tasks.precompute import (
    CACHE_MIN_GAMES,
    DEFENSE_WINDOW,
    LEAGUE_DAYS,
    ML_FEATURE_STORE,
    PLAYER_COMPOSITE,
    PLAYER_DAILY_CACHE,
    PLAYER_SHOT_ZONES,
    TEAM_DEFENSE_ZONES,
    ml_feature_rows,
    player_composite_factors,
)

SQL_DIR = Path(__file__).resolve().parent / "sql"
SQL_FILES: dict[str, Path] = {
    name: SQL_DIR / f"{name}.sql"
    for name in (
        "player_game_context",
        "team_defense_zone_analysis",
        "player_shot_zone_analysis",
        "player_daily_cache",
        "team_form",
    )
}


@cache
def _sql(name: str) -> str:
    return SQL_FILES[name].read_text(encoding="utf-8")


def _dates(s: pd.Series) -> pd.Series:
    """DATE column → Python dates (object), as the pandas formulas hand them back."""
    return pd.to_datetime(s).dt.date.astype("object")


def _finish(df: pd.DataFrame, game_date: date, season: str) -> pd.DataFrame:
    """`.assign(game_date=…)` then `_with_season`, as the tasks do."""
    return df.assign(game_date=game_date).reset_index(drop=True).assign(season=season)


def _ints(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    for col in columns:
        df[col] = df[col].astype("int64")
    return df


def _floats(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    for col in columns:
        df[col] = df[col].astype("float64")
    return df


def _strings(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    for col in columns:
        df[col] = df[col].astype("str")  # NULL stays missing (pandas' default string dtype)
    return df


def _of_date(wh: Warehouse, table: str, game_date: date) -> pd.DataFrame:
    return wh.query(f"SELECT * FROM {table} WHERE game_date = @game_date", {"game_date": game_date})


# ---------------------------------------------------------------- analytics


def player_game_context_rows(wh: Warehouse, game_date: date, season: str) -> pd.DataFrame:
    """tasks.analytics.player_context: the date's player_game_summary players with rest and
    load from their raw box-score rows of the season strictly before the date."""
    df = wh.query(_sql("player_game_context"), {
        "game_date": game_date, "season": season,
        "since_7": game_date - timedelta(days=7), "since_14": game_date - timedelta(days=14),
        "since_15": game_date - timedelta(days=15),
    })  # fmt: skip
    df["game_date"] = _dates(df["game_date"])
    last = _dates(df.pop("last_game_date"))
    _ints(df, ["player_id", "team_id", "games_played_season", "games_last_7_days", "games_last_14_days",
               "back_to_backs_last_14_days"])  # fmt: skip
    _floats(df, ["minutes_last_7_days"])
    _strings(df, ["game_id", "season"])
    # Days off between games: 0 on a back-to-back, NULL before a season's first game.
    df["days_rest"] = pd.array([None if pd.isna(d) else (game_date - d).days - 1 for d in last], dtype="Int64")
    df["back_to_back"] = df["days_rest"].eq(0).fillna(False).astype(bool)
    return df.reset_index(drop=True)


# ---------------------------------------------------------------- precompute


def team_defense_zone_analysis_rows(wh: Warehouse, game_date: date, season: str) -> pd.DataFrame:
    """tasks.precompute.team_defense_zones."""
    df = wh.query(_sql("team_defense_zone_analysis"), {
        "game_date": game_date, "season": season, "defense_window": DEFENSE_WINDOW,
        "league_since": game_date - timedelta(days=LEAGUE_DAYS),
    })  # fmt: skip
    df["window_first_date"] = _dates(df["window_first_date"])
    _ints(df, ["team_id", "games_in_window", *(c for c in df.columns if c.endswith(("_attempts", "_makes")))])
    _floats(df, [c for c in df.columns if c.endswith(("_pct_allowed", "_fg_pct", "_vs_league", "_last_15"))])
    _strings(df, ["strongest_zone", "weakest_zone"])
    return _finish(df, game_date, season)


def player_shot_zone_analysis_rows(wh: Warehouse, game_date: date, season: str) -> pd.DataFrame:
    """tasks.precompute.player_shot_zones."""
    df = wh.query(_sql("player_shot_zone_analysis"), {"game_date": game_date, "season": season})
    _ints(df, ["player_id", "team_id", "games_last_10", "games_last_20"])
    _floats(df, [c for c in df.columns if "_rate_" in c or "_fg_pct_" in c])
    _strings(df, ["primary_scoring_zone", "sample_quality"])
    return _finish(df, game_date, season)


def player_daily_cache_rows(wh: Warehouse, game_date: date, season: str) -> pd.DataFrame:
    """tasks.precompute.daily_cache (players with ≥ CACHE_MIN_GAMES earlier games)."""
    df = wh.query(_sql("player_daily_cache"), {"game_date": game_date, "season": season,
                                               "min_games": CACHE_MIN_GAMES})  # fmt: skip
    _ints(df, ["player_id", "team_id", "games_played_season"])
    _floats(df, [c for c in df.columns if c not in ("player_id", "team_id", "games_played_season")])
    return _finish(df, game_date, season)


def team_form_rows(wh: Warehouse, game_date: date, season: str) -> tuple[pd.DataFrame, float]:
    """(team_id → pace_last_10, offensive_rating_last_10, win_pct_season; league pace):
    tasks.precompute.team_form and league_pace for the teams playing on the date."""
    df = wh.query(_sql("team_form"), {"game_date": game_date, "season": season,
                                      "league_since": game_date - timedelta(days=LEAGUE_DAYS)})  # fmt: skip
    league = float(df.league_pace.iloc[0]) if len(df) and pd.notna(df.league_pace.iloc[0]) else float("nan")
    form = df[df.team_id.notna()].astype({"team_id": "int64"}).set_index("team_id")
    return _floats(form.drop(columns="league_pace"), ["pace_last_10", "offensive_rating_last_10",
                                                      "win_pct_season"]), league  # fmt: skip


def _offense_standin(form: pd.DataFrame, league: float, game_date: date) -> pd.DataFrame:
    """A team-offense frame from which tasks.precompute.team_form gives `form`'s
    pace_last_10 and league_pace gives `league`: one game per team with its window's mean
    pace, dated before the league's 30 days, and one game of a team that does not play
    (team_id -1), inside them, at the league's mean pace. player_composite_factors then runs
    its own pandas formula on the SQL aggregates, not on the season."""
    old = game_date - timedelta(days=LEAGUE_DAYS + 1)
    teams = form.pace_last_10.dropna()
    rows = pd.DataFrame({"game_id": "", "game_date": old, "team_id": teams.index.astype("int64"),
                         "pace": teams.values, "offensive_rating": float("nan"), "win": False})  # fmt: skip
    if pd.notna(league):
        rows = pd.concat([rows, pd.DataFrame({"game_id": [""], "game_date": [game_date - timedelta(days=1)],
                                              "team_id": [-1], "pace": [league], "offensive_rating": [float("nan")],
                                              "win": [False]})], ignore_index=True)  # fmt: skip
    return rows.astype({"team_id": "int64", "pace": "float64"})


def player_composite_factors_rows(wh: Warehouse, game_date: date, season: str) -> pd.DataFrame:
    """tasks.precompute.composite_factors: the date's precompute rows, and team form and
    league pace from team_form.sql instead of the season's team offense rows."""
    form, league = team_form_rows(wh, game_date, season)
    return player_composite_factors(
        _of_date(wh, PLAYER_DAILY_CACHE.id, game_date), _of_date(wh, PLAYER_SHOT_ZONES.id, game_date),
        _of_date(wh, TEAM_DEFENSE_ZONES.id, game_date), _of_date(wh, PLAYER_GAME_CONTEXT.id, game_date),
        _offense_standin(form, league, game_date), _players_today(wh, game_date), game_date,
    ).assign(season=season)  # fmt: skip


def ml_feature_store_rows(wh: Warehouse, game_date: date, season: str) -> tuple[pd.DataFrame, list[str]]:
    """tasks.precompute.feature_store: (rows with `season`, the guard warnings). Every input
    is a partition of the date; raises FeatureRangeError like ml_feature_rows."""
    rows, warnings = ml_feature_rows(
        _players_today(wh, game_date), _of_date(wh, PLAYER_DAILY_CACHE.id, game_date),
        _of_date(wh, PLAYER_SHOT_ZONES.id, game_date), _of_date(wh, PLAYER_COMPOSITE.id, game_date),
        _of_date(wh, TEAM_DEFENSE_ZONES.id, game_date), _of_date(wh, PLAYER_GAME_CONTEXT.id, game_date),
        game_date,
    )  # fmt: skip
    return rows.assign(season=season), warnings


def _players_today(wh: Warehouse, game_date: date) -> pd.DataFrame:
    """Who plays on the date: the date's box score (tasks.precompute._players_today)."""
    return wh.query(
        f"SELECT game_id, player_id, team_id, opponent_team_id, home, pts FROM {PLAYER_GAME_SUMMARY.id} "
        "WHERE game_date = @game_date", {"game_date": game_date},
    )  # fmt: skip


ROWS = {
    PLAYER_GAME_CONTEXT.name: player_game_context_rows,
    TEAM_DEFENSE_ZONES.name: team_defense_zone_analysis_rows,
    PLAYER_SHOT_ZONES.name: player_shot_zone_analysis_rows,
    PLAYER_DAILY_CACHE.name: player_daily_cache_rows,
    PLAYER_COMPOSITE.name: player_composite_factors_rows,
    ML_FEATURE_STORE.name: ml_feature_store_rows,
}
