"""Analytics phase: team offense, team defense, player game summary, player game context.

The formulas are written twice on purpose: as plain pandas functions over frames shaped like
the `nba_raw` tables (readable, callable on the CSVs without Prefect or a warehouse) and as
the SQL the processors run in the warehouse (tasks/sql/<table>.sql), which writes each date's
rows without fetching them. Tests hold the two to the same rows and values over the season.
Formulas: DESIGN §4.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from blocks.warehouse import Query, TableSpec
from engine.processors import MissingInputError, Phase, ProcessorRun, Processor, Read
from tasks.raw import seasons_of

PAINT_ZONES = ("Restricted Area", "In The Paint (Non-RA)")
ZONES = ("paint", "mid_range", "three")
BOX_TOTALS = ("pts", "fgm", "fga", "fg3m", "fg3a", "ftm", "fta", "oreb", "dreb", "reb", "ast",
              "stl", "blk", "tov", "pf")  # fmt: skip
ZONE_COLUMNS = tuple(f"{z}_{k}" for z in ZONES for k in ("attempts", "makes"))


# ---------------------------------------------------------------- formulas (no Prefect)


def _div(num: pd.Series, den: pd.Series) -> pd.Series:
    """num / den, NULL where the denominator is 0 (a rate of nothing is unknown, not 0)."""
    num, den = num.astype("float64"), den.astype("float64")
    return (num / den.where(den != 0)).astype("float64")


def possessions(fga, fta, oreb, tov) -> pd.Series:
    return fga + 0.44 * fta - oreb + tov


def team_minutes(overtime_periods) -> pd.Series:
    """240 player-minutes a game + 25 per overtime period (5 players × 5 minutes)."""
    return 240 + 25 * overtime_periods


def pace(poss, overtime_periods) -> pd.Series:
    """Possessions per 48 minutes: an overtime game is not a faster game."""
    return poss * 48 / (team_minutes(overtime_periods) / 5)


def ts_pct(pts, fga, fta) -> pd.Series:
    return _div(pts, 2 * (fga + 0.44 * fta))


def efg_pct(fgm, fg3m, fga) -> pd.Series:
    return _div(fgm + 0.5 * fg3m, fga)


def usage_rate(fga, fta, tov, minutes, team_fga, team_fta, team_tov, overtime_periods) -> pd.Series:
    """100·(FGA + 0.44·FTA + TOV)·(team minutes / 5) / (minutes·(team FGA + 0.44·team FTA + team TOV)).

    NULL when the player has 0 minutes or the team row is missing. Clipped at 100: the API
    rounds minutes to whole minutes, so a player who took 5 shots in "1" minute (really up to
    1:29) computes above 100 (6 player-games in 2023-24)."""
    team_plays = team_fga + 0.44 * team_fta + team_tov
    raw = _div(100 * (fga + 0.44 * fta + tov) * (team_minutes(overtime_periods) / 5), minutes * team_plays)
    return raw.clip(upper=100.0)


def shot_zone(shots: pd.DataFrame) -> pd.Series:
    """paint = Restricted Area + In The Paint (Non-RA); three = every 3PT attempt; mid-range =
    every other 2PT. Without a zone, distance decides (≤ 8 ft paint)."""
    zone = shots["basic_zone"].fillna("")
    three = shots["shot_type"] == "3PT"
    paint = zone.isin(PAINT_ZONES) | ((zone == "") & (shots["shot_distance"] <= 8))
    return pd.Series(np.select([three, paint], ["three", "paint"], "mid_range"), index=shots.index)


def zone_counts(shots: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Attempts and makes per zone, plus the shot chart's own FGA and 3PA, per group."""
    df = shots.assign(zone=shot_zone(shots), made=shots["shot_made"].astype("int64"))
    out = df.groupby(by).agg(
        shot_chart_fga=("made", "size"), shot_chart_fg3a=("zone", lambda z: (z == "three").sum())
    )
    for zone in ZONES:
        in_zone = df[df.zone == zone].groupby(by)["made"]
        out[f"{zone}_attempts"] = in_zone.size()
        out[f"{zone}_makes"] = in_zone.sum()
    return out.fillna(0).astype("int64").reset_index()


def team_schedule(schedule: pd.DataFrame) -> pd.DataFrame:
    """Each game twice, once from each team's side, with the final scores from the schedule."""
    sides = []
    for side, other, is_home in (("home", "away", True), ("away", "home", False)):
        sides.append(
            pd.DataFrame(
                {
                    "game_id": schedule["game_id"],
                    "game_date": schedule["game_date"],
                    "season": schedule["season"],
                    "team_id": schedule[f"{side}_team_id"].astype("int64"),
                    "team_abbr": schedule[f"{side}_team_abbreviation"],
                    "opponent_team_id": schedule[f"{other}_team_id"].astype("int64"),
                    "home": is_home,
                    "final_points": schedule[f"{side}_pts"].astype("int64"),
                    "opponent_final_points": schedule[f"{other}_pts"].astype("int64"),
                    "overtime_periods": schedule["num_ot"].astype("int64"),
                }
            )
        )
    return pd.concat(sides, ignore_index=True)


def team_game_totals(box: pd.DataFrame, schedule: pd.DataFrame, shots: pd.DataFrame) -> pd.DataFrame:
    """One row per team per game: box-score sums, shot zones, schedule facts, possessions."""
    teams = team_schedule(schedule)
    sums = box.groupby(["game_id", "team_id"])[list(BOX_TOTALS)].sum().astype("int64").reset_index()
    sums["team_id"] = sums["team_id"].astype("int64")
    out = teams.merge(sums, on=["game_id", "team_id"], how="left", validate="one_to_one")
    missing = out[out["pts"].isna()]
    if len(missing):
        pairs = ", ".join(f"{g} team {t}" for g, t in zip(missing.game_id, missing.team_id, strict=True))
        raise MissingInputError(f"no box score rows for scheduled {pairs}")
    zones = zone_counts(shots, ["game_id", "team_id"])
    out = out.merge(zones, on=["game_id", "team_id"], how="left")
    zone_cols = [*ZONE_COLUMNS, "shot_chart_fga", "shot_chart_fg3a"]
    out[zone_cols] = out[zone_cols].fillna(0).astype("int64")
    out["possessions"] = possessions(out.fga, out.fta, out.oreb, out.tov)
    out["pace"] = pace(out.possessions, out.overtime_periods)
    return out


def team_offense_game_summary(box, schedule, shots) -> pd.DataFrame:
    t = team_game_totals(box, schedule, shots)
    return t.assign(
        points=t.pts,
        offensive_rating=_div(100 * t.pts, t.possessions),
        ts_pct=ts_pct(t.pts, t.fga, t.fta),
        points_in_paint=2 * t.paint_makes,
        win=t.final_points > t.opponent_final_points,
        margin=t.final_points - t.opponent_final_points,
    )


def team_defense_game_summary(box, schedule, shots) -> pd.DataFrame:
    """Each team's defence: its opponent's offence seen from the other side, plus its own
    steals, blocks and defensive rebounds, and the turnovers it forced."""
    t = team_game_totals(box, schedule, shots)
    opp = t.set_index(["game_id", "team_id"])
    o = opp.loc[list(zip(t.game_id, t.opponent_team_id, strict=True))].reset_index(drop=True)
    return pd.DataFrame(
        {
            "game_id": t.game_id,
            "game_date": t.game_date,
            "season": t.season,
            "team_id": t.team_id,
            "team_abbr": t.team_abbr,
            "opponent_team_id": t.opponent_team_id,
            "home": t.home,
            "overtime_periods": t.overtime_periods,
            "points_allowed": o.pts,
            **{f"opp_{c}": o[c] for c in ("fgm", "fga", "fg3m", "fg3a", "ftm", "fta", "oreb", "tov")},
            **{f"opp_{c}": o[c] for c in ZONE_COLUMNS},
            "opp_possessions": o.possessions,
            "defensive_rating": _div(100 * o.pts, o.possessions),
            "opponent_pace": o.pace,
            "opp_ts_pct": ts_pct(o.pts, o.fga, o.fta),
            "steals": t.stl,
            "blocks": t.blk,
            "defensive_rebounds": t.dreb,
            "turnovers_forced": o.tov,
        }
    )


def player_game_summary(box, shots, team_offense) -> pd.DataFrame:
    """One row per player per game in the box score; usage needs the team offense row."""
    team = team_offense[
        ["game_id", "team_id", "fga", "fta", "tov", "overtime_periods", "win", "home", "season"]
    ].rename(columns={"fga": "team_fga", "fta": "team_fta", "tov": "team_tov"})
    team = team.assign(team_id=team.team_id.astype("int64"))
    p = box.assign(team_id=box.team_id.astype("int64"), player_id=box.player_id.astype("int64"))
    p = p.drop(columns=["season"]).merge(team, on=["game_id", "team_id"], how="left")
    zones = zone_counts(shots.assign(player_id=shots.player_id.astype("int64")), ["game_id", "player_id"])
    p = p.merge(zones, on=["game_id", "player_id"], how="left")
    zone_cols = [*ZONE_COLUMNS, "shot_chart_fga", "shot_chart_fg3a"]
    p[zone_cols] = p[zone_cols].fillna(0).astype("int64")
    minutes = p["min"].astype("float64")
    return p.assign(
        team_abbr=p.team_abbreviation,
        opponent_team_id=p.opp_team_id,
        minutes=minutes,
        usage_rate=usage_rate(
            p.fga, p.fta, p.tov, minutes.where(minutes > 0), p.team_fga, p.team_fta, p.team_tov,
            p.overtime_periods,
        ),
        ts_pct=ts_pct(p.pts, p.fga, p.fta),
        efg_pct=efg_pct(p.fgm, p.fg3m, p.fga),
        # The shot chart agrees with the box score: zone splits are complete for this row.
        has_complete_shot_zones=(p.shot_chart_fga == p.fga) & (p.shot_chart_fg3a == p.fg3a),
    )  # fmt: skip


def player_game_context(history: pd.DataFrame, game_date: date) -> pd.DataFrame:
    """Rest and load of each player playing on `game_date`, from their games strictly before
    it this season. `history` holds the season's player_game_summary rows up to game_date."""
    h = history.assign(game_date=pd.to_datetime(history.game_date).dt.date)
    today = h[h.game_date == game_date][["game_id", "game_date", "season", "player_id", "team_id"]]
    before = h[h.game_date < game_date][["player_id", "game_date", "minutes"]]
    played = set(zip(before.player_id, before.game_date, strict=True))
    before = before.assign(
        days_ago=[(game_date - d).days for d in before.game_date],
        second_of_b2b=[(p, d - timedelta(days=1)) in played for p, d in zip(before.player_id, before.game_date, strict=True)],
    )  # fmt: skip
    last7, last14 = before[before.days_ago <= 7], before[before.days_ago <= 14]
    per_player = pd.DataFrame(
        {
            "games_played_season": before.groupby("player_id").size(),
            "last_game_days_ago": before.groupby("player_id").days_ago.min(),
            "games_last_7_days": last7.groupby("player_id").size(),
            "minutes_last_7_days": last7.groupby("player_id").minutes.sum(),
            "games_last_14_days": last14.groupby("player_id").size(),
            "back_to_backs_last_14_days": last14.groupby("player_id").second_of_b2b.sum(),
        }
    )
    out = today.merge(per_player, left_on="player_id", right_index=True, how="left")
    counts = ["games_played_season", "games_last_7_days", "games_last_14_days", "back_to_backs_last_14_days"]
    out[counts] = out[counts].fillna(0).astype("int64")
    out["minutes_last_7_days"] = out["minutes_last_7_days"].fillna(0.0).astype("float64")
    # Days off between games: 0 on a back-to-back, NULL before a season's first game.
    out["days_rest"] = (out.pop("last_game_days_ago") - 1).astype("Int64")
    out["back_to_back"] = out["days_rest"].eq(0).fillna(False).astype(bool)
    return out.reset_index(drop=True)


# ---------------------------------------------------------------- tables

_GAME = (("game_id", "STRING"), ("game_date", "DATE"), ("season", "STRING"))
_ZONES = tuple((c, "INT64") for c in ZONE_COLUMNS)

TEAM_OFFENSE = TableSpec(
    dataset="nba_analytics",
    name="team_offense_game_summary",
    columns=(
        *_GAME, ("team_id", "INT64"), ("team_abbr", "STRING"), ("opponent_team_id", "INT64"),
        ("home", "BOOL"), ("points", "INT64"),
        *((c, "INT64") for c in BOX_TOTALS if c != "pts"),
        ("possessions", "FLOAT64"), ("offensive_rating", "FLOAT64"), ("pace", "FLOAT64"),
        ("ts_pct", "FLOAT64"), *_ZONES, ("points_in_paint", "INT64"), ("win", "BOOL"),
        ("margin", "INT64"), ("overtime_periods", "INT64"),
    ),
    cluster_by=("team_id",),
    key=("game_id", "team_id"),
    required=("game_id", "game_date", "team_id", "opponent_team_id", "points", "win"),
    description="One row per team per game: the team's offence.",
)  # fmt: skip

TEAM_DEFENSE = TableSpec(
    dataset="nba_analytics",
    name="team_defense_game_summary",
    columns=(
        *_GAME, ("team_id", "INT64"), ("team_abbr", "STRING"), ("opponent_team_id", "INT64"),
        ("home", "BOOL"), ("overtime_periods", "INT64"), ("points_allowed", "INT64"),
        *((f"opp_{c}", "INT64") for c in ("fgm", "fga", "fg3m", "fg3a", "ftm", "fta", "oreb", "tov")),
        *((f"opp_{c}", "INT64") for c in ZONE_COLUMNS),
        ("opp_possessions", "FLOAT64"), ("defensive_rating", "FLOAT64"),
        ("opponent_pace", "FLOAT64"), ("opp_ts_pct", "FLOAT64"), ("steals", "INT64"),
        ("blocks", "INT64"), ("defensive_rebounds", "INT64"), ("turnovers_forced", "INT64"),
    ),
    cluster_by=("team_id",),
    key=("game_id", "team_id"),
    required=("game_id", "game_date", "team_id", "points_allowed"),
    description="One row per defending team per game: what its opponent did against it.",
)  # fmt: skip

PLAYER_GAME_SUMMARY = TableSpec(
    dataset="nba_analytics",
    name="player_game_summary",
    columns=(
        *_GAME, ("player_id", "INT64"), ("player_name", "STRING"), ("team_id", "INT64"),
        ("team_abbr", "STRING"), ("opponent_team_id", "INT64"), ("home", "BOOL"),
        ("minutes", "FLOAT64"), *((c, "INT64") for c in BOX_TOTALS), ("plus_minus", "INT64"),
        ("usage_rate", "FLOAT64"), ("ts_pct", "FLOAT64"), ("efg_pct", "FLOAT64"), *_ZONES,
        ("shot_chart_fga", "INT64"), ("has_complete_shot_zones", "BOOL"), ("win", "BOOL"),
    ),
    cluster_by=("player_id", "team_id"),
    key=("game_id", "player_id"),
    required=("game_id", "game_date", "player_id", "team_id", "minutes", "pts", "win"),
    description="One row per player per game in the box score.",
)  # fmt: skip

PLAYER_GAME_CONTEXT = TableSpec(
    dataset="nba_analytics",
    name="player_game_context",
    columns=(
        *_GAME, ("player_id", "INT64"), ("team_id", "INT64"), ("days_rest", "INT64"),
        ("back_to_back", "BOOL"), ("games_last_7_days", "INT64"), ("minutes_last_7_days", "FLOAT64"),
        ("games_last_14_days", "INT64"), ("back_to_backs_last_14_days", "INT64"),
        ("games_played_season", "INT64"),
    ),
    cluster_by=("player_id",),
    key=("game_id", "player_id"),
    required=("game_id", "game_date", "player_id", "back_to_back", "games_played_season"),
    description="One row per player per game: rest and load from the season's earlier games.",
)  # fmt: skip

ANALYTICS_TABLES = (TEAM_OFFENSE, TEAM_DEFENSE, PLAYER_GAME_SUMMARY, PLAYER_GAME_CONTEXT)


# ---------------------------------------------------------------- the phase

# The formulas above run in the warehouse (tasks/sql/<table>.sql, the same rows and values:
# tests/tasks/test_analytics.py) and their rows are written there (INSERT ... SELECT).
SQL_DIR = Path(__file__).resolve().parent / "sql"


def sql_file(name: str) -> Path:
    """A processor's SQL file, `tasks/sql/<name>.sql` (part of its code version)."""
    return SQL_DIR / f"{name}.sql"


def _has_games(run: ProcessorRun) -> None:
    """A game date always has a schedule and box scores: never write an empty date for it."""
    found = run.warehouse.query(
        "SELECT (SELECT count(*) FROM nba_raw.schedule WHERE game_date = @game_date) AS games, "
        "(SELECT count(*) FROM nba_raw.player_boxscores WHERE game_date = @game_date) AS players",
        {"game_date": run.game_date},
    )  # fmt: skip
    if not (found.games[0] and found.players[0]):
        raise MissingInputError(
            f"nba_raw has no schedule or box score rows for {run.game_date}: run the raw phase first"
        )


def team_offense(run: ProcessorRun) -> Query:
    """Each team's box-score sums, shot zones, possessions, pace and ratings
    (team_offense_game_summary)."""
    _has_games(run)
    return run.sql_rows()


def team_defense(run: ProcessorRun) -> Query:
    """Each team's opponent's offence of the date, seen from the defence (team_defense_game_summary)."""
    return run.sql_rows()


def player_summary(run: ProcessorRun) -> Query:
    """Usage rate needs the team's totals of the same game (team offense, written first)
    (player_game_summary)."""
    return run.sql_rows()


def player_context(run: ProcessorRun) -> pd.DataFrame:
    """The date's players (player_game_summary) with rest and load from their raw box-score
    rows of the season strictly before the date, counted by the warehouse
    (sql/player_game_context.sql; the formula: player_game_context)."""
    d = run.game_date
    df = run.query_sql(since_7=d - timedelta(days=7), since_14=d - timedelta(days=14),
                       since_15=d - timedelta(days=15))  # fmt: skip
    last = pd.to_datetime(df.pop("last_game_date")).dt.date
    # Days off between games: 0 on a back-to-back, NULL before a season's first game.
    df["days_rest"] = pd.array([None if pd.isna(x) else (d - x).days - 1 for x in last], dtype="Int64")
    df["back_to_back"] = df["days_rest"].eq(0).fillna(False).astype(bool)
    return df.reset_index(drop=True)


_RAW_OF_DATE = (Read("schedule"), Read("player_boxscores"), Read("shots"))

ANALYTICS = Phase(
    name="analytics",
    processors=(
        Processor(TEAM_OFFENSE.name, TEAM_OFFENSE, team_offense, reads=_RAW_OF_DATE,
                  sql=(sql_file(TEAM_OFFENSE.name),)),
        Processor(TEAM_DEFENSE.name, TEAM_DEFENSE, team_defense, reads=(Read(TEAM_OFFENSE.name),),
                  after=(TEAM_OFFENSE.name,), sql=(sql_file(TEAM_DEFENSE.name),)),
        Processor(PLAYER_GAME_SUMMARY.name, PLAYER_GAME_SUMMARY, player_summary,
                  reads=(Read("player_boxscores"), Read("shots"), Read(TEAM_OFFENSE.name)),
                  after=(TEAM_OFFENSE.name,), sql=(sql_file(PLAYER_GAME_SUMMARY.name),)),
        # A season's earlier games: a date's context changes when any earlier date is reloaded.
        Processor(PLAYER_GAME_CONTEXT.name, PLAYER_GAME_CONTEXT, player_context,
                  reads=(Read("player_boxscores", "season_before"), Read(PLAYER_GAME_SUMMARY.name)),
                  after=(PLAYER_GAME_SUMMARY.name,), sql=(sql_file(PLAYER_GAME_CONTEXT.name),)),
    ),
    seasons=seasons_of,
)  # fmt: skip
