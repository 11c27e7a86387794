"""Precompute phase: each row describes a player or team *before* the games of its
`game_date`, from that season's games strictly before it.

  team_defense_zone_analysis ∥ player_shot_zone_analysis → player_daily_cache
  → player_composite_factors → ml_feature_store

The formulas are pandas functions over frames shaped like the analytics tables, so a test
calls them on frames built from the CSVs. The only same-day inputs are who plays on the date
(the date's box score: the historical definition of "expected to play"), the date's schedule,
player_game_context (itself computed from earlier games) and the target `actual_points`.
Nothing is written for a season's first 14 days (bootstrap)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from blocks.logs import run_logger
from blocks.warehouse import Query, TableSpec
from engine.processors import Phase, Processor, ProcessorRun, Read
from tasks.analytics import PLAYER_GAME_CONTEXT, PLAYER_GAME_SUMMARY, TEAM_DEFENSE, TEAM_OFFENSE, ZONES, sql_file
from tasks.raw import seasons_of

BOOTSTRAP_DAYS = 14
FEATURE_VERSION = "v1"
DEFENSE_WINDOW, LEAGUE_DAYS = 15, 30
CACHE_MIN_GAMES = 3


class FeatureRangeError(ValueError):
    """A feature value outside its declared range: the date's feature rows are not written."""


# ---------------------------------------------------------------- windows (no Prefect)


def _before(history: pd.DataFrame, game_date: date) -> pd.DataFrame:
    """Rows strictly before the date, oldest first (the only rows a window may use)."""
    h = history.assign(game_date=pd.to_datetime(history.game_date).dt.date)
    return h[h.game_date < game_date].sort_values(["game_date", "game_id"], kind="stable")


def _last(history: pd.DataFrame, by: str, n: int) -> pd.DataFrame:
    return history.groupby(by, sort=False).tail(n)


def _ratio(num, den) -> pd.Series:
    num, den = pd.Series(num, dtype="float64"), pd.Series(den, dtype="float64")
    return num / den.where(den != 0)


def bootstrap_until(season_start: date) -> date:
    """The first date precompute writes: season start + 14 days."""
    return season_start + timedelta(days=BOOTSTRAP_DAYS)


def team_defense_zone_analysis(defense: pd.DataFrame, teams_today: pd.DataFrame, game_date: date) -> pd.DataFrame:
    """Each team playing on the date: opponent FG% by zone over its last 15 games, against
    the league's over the last 30 days; its strongest and weakest zone."""
    h = _before(defense, game_date)
    last = _last(h, "team_id", DEFENSE_WINDOW)
    agg = last.groupby("team_id").agg(
        games_in_window=("game_id", "size"),
        window_first_date=("game_date", "min"),
        defensive_rating_last_15=("defensive_rating", "mean"),
        opponent_pace_last_15=("opponent_pace", "mean"),
        **{f"{z}_{k}": (f"opp_{z}_{k}", "sum") for z in ZONES for k in ("attempts", "makes")},
    )
    league = h[h.game_date >= game_date - timedelta(days=LEAGUE_DAYS)]
    out = teams_today[["team_id"]].drop_duplicates().merge(agg, left_on="team_id", right_index=True)
    for z in ZONES:
        league_pct = _ratio([league[f"opp_{z}_makes"].sum()], [league[f"opp_{z}_attempts"].sum()]).iloc[0]
        out[f"{z}_fg_pct_allowed"] = _ratio(out[f"{z}_makes"], out[f"{z}_attempts"]).values
        out[f"league_{z}_fg_pct"] = league_pct
        out[f"{z}_vs_league"] = out[f"{z}_fg_pct_allowed"] - league_pct
    vs = out[[f"{z}_vs_league" for z in ZONES]]
    has = vs.notna().any(axis=1)
    out["strongest_zone"] = vs.idxmin(axis=1, skipna=True).where(has).str.removesuffix("_vs_league")
    out["weakest_zone"] = vs.idxmax(axis=1, skipna=True).where(has).str.removesuffix("_vs_league")
    return out.assign(game_date=game_date).reset_index(drop=True)


def player_shot_zone_analysis(summary: pd.DataFrame, players_today: pd.DataFrame, game_date: date) -> pd.DataFrame:
    """Each player playing on the date with an earlier game: zone attempt rates and FG% over
    the last 10 and 20 games, primary scoring zone, sample quality."""
    h = _before(summary, game_date)
    out = players_today[["player_id", "team_id"]].drop_duplicates("player_id")
    for n in (10, 20):
        last = _last(h, "player_id", n)
        agg = last.groupby("player_id").agg(
            **{f"games_last_{n}": ("game_id", "size")},
            **{f"{z}_{k}": (f"{z}_{k}", "sum") for z in ZONES for k in ("attempts", "makes")},
        )
        total = sum(agg[f"{z}_attempts"] for z in ZONES)
        cols = {f"games_last_{n}": agg[f"games_last_{n}"]}
        for z in ZONES:
            cols[f"{z}_rate_last_{n}"] = _ratio(agg[f"{z}_attempts"], total).values
            cols[f"{z}_fg_pct_last_{n}"] = _ratio(agg[f"{z}_makes"], agg[f"{z}_attempts"]).values
        if n == 20:
            points = pd.DataFrame({z: agg[f"{z}_makes"] * (3 if z == "three" else 2) for z in ZONES})
            cols["primary_scoring_zone"] = points.idxmax(axis=1).where(points.sum(axis=1) > 0)
        out = out.merge(pd.DataFrame(cols, index=agg.index), left_on="player_id", right_index=True,
                        how="inner" if n == 10 else "left")  # fmt: skip
    out["sample_quality"] = np.select(
        [out.games_last_20 >= 10, out.games_last_20 >= 5], ["high", "medium"], default="low"
    )
    return out.assign(game_date=game_date).reset_index(drop=True)


def player_daily_cache(summary: pd.DataFrame, offense: pd.DataFrame, players_today: pd.DataFrame,
                       game_date: date) -> pd.DataFrame:  # fmt: skip
    """Each player playing on the date with at least 3 earlier games this season: scoring,
    minutes, usage and efficiency windows, and his team's (today's team: a traded player
    brings his own games, not his old team's) pace and rating over its last 10 games."""
    h = _before(summary, game_date)
    by = h.groupby("player_id")
    last5, last10 = _last(h, "player_id", 5).groupby("player_id"), _last(h, "player_id", 10).groupby("player_id")
    out = pd.DataFrame({
        "games_played_season": by.size(),
        "points_avg_season": by.pts.mean(),
        "points_avg_last_5": last5.pts.mean(),
        "points_avg_last_10": last10.pts.mean(),
        "points_std_last_10": last10.pts.std(ddof=1),
        "minutes_avg_last_10": last10.minutes.mean(),
        "usage_avg_last_5": last5.usage_rate.mean(),
        "usage_avg_last_10": last10.usage_rate.mean(),
        "usage_avg_season": by.usage_rate.mean(),
        "ts_pct_last_10": _ratio(last10.pts.sum(), 2 * (last10.fga.sum() + 0.44 * last10.fta.sum())).values,
    })  # fmt: skip
    out = out[out.games_played_season >= CACHE_MIN_GAMES]
    today = players_today[["player_id", "team_id"]].drop_duplicates("player_id")
    out = today.merge(out, left_on="player_id", right_index=True)
    teams = team_form(offense, game_date).add_prefix("team_")
    out = out.merge(teams, left_on="team_id", right_index=True, how="left")
    return out.assign(game_date=game_date).reset_index(drop=True)


def team_form(offense: pd.DataFrame, game_date: date) -> pd.DataFrame:
    """team_id → pace and offensive rating over its last 10 games, win % this season."""
    h = _before(offense, game_date)
    last10 = _last(h, "team_id", 10).groupby("team_id")
    return pd.DataFrame({
        "pace_last_10": last10.pace.mean(),
        "offensive_rating_last_10": last10.offensive_rating.mean(),
        "win_pct_season": h.groupby("team_id").win.mean(),
    })  # fmt: skip


def league_pace(offense: pd.DataFrame, game_date: date) -> float:
    h = _before(offense, game_date)
    recent = h[h.game_date >= game_date - timedelta(days=LEAGUE_DAYS)]
    return float(recent.pace.mean()) if len(recent) else float("nan")


def fatigue_score(context: pd.DataFrame) -> pd.Series:
    """0 (rested) … 100: a back-to-back, a fourth game in 7 days, heavy minutes, repeated
    back-to-backs add up (a player's first game has no rest to count: 0)."""
    raw = (
        35 * context.back_to_back.astype("float64")
        + 12 * (context.games_last_7_days - 2).clip(lower=0)
        + 0.25 * (context.minutes_last_7_days - 90).clip(lower=0)
        + 6 * context.back_to_backs_last_14_days
    )
    return raw.fillna(0).clip(0, 100).astype("float64")


def player_composite_factors(cache: pd.DataFrame, zones: pd.DataFrame, defense_today: pd.DataFrame,
                             context: pd.DataFrame, team_pace: pd.Series, league: float,
                             players_today: pd.DataFrame, game_date: date) -> pd.DataFrame:  # fmt: skip
    """Adjustments for each cached player: fatigue 0–100, shot-zone mismatch ±10 (his zones
    vs the opponent's zone defence vs the league), pace ±3, usage spike ±3, and their sum."""
    p = cache[["player_id", "team_id", "team_pace_last_10", "usage_avg_last_5", "usage_avg_season"]].merge(
        players_today[["player_id", "opponent_team_id"]].drop_duplicates("player_id"), on="player_id"
    )
    p = p.merge(context[["player_id", "back_to_back", "games_last_7_days", "minutes_last_7_days",
                         "back_to_backs_last_14_days"]], on="player_id", how="left")  # fmt: skip
    p["fatigue_score"] = fatigue_score(p)
    d = defense_today.set_index("team_id")
    z = zones.set_index("player_id")
    edge = pd.Series(0.0, index=p.index)
    known = pd.Series(False, index=p.index)
    for zone in ZONES:
        rate = p.player_id.map(z[f"{zone}_rate_last_20"]) if len(z) else pd.Series(np.nan, index=p.index)
        vs = p.opponent_team_id.map(d[f"{zone}_vs_league"]) if len(d) else pd.Series(np.nan, index=p.index)
        term = rate * vs
        known |= term.notna()
        edge += term.fillna(0)
    p["shot_zone_mismatch"] = (200 * edge).where(known, 0.0).clip(-10, 10)
    p["shot_zone_mismatch_known"] = known
    opp_pace = p.opponent_team_id.map(team_pace)
    expected = (p.team_pace_last_10 + opp_pace) / 2
    p["pace_adjustment"] = (0.3 * (expected - league)).fillna(0).clip(-3, 3)
    p["usage_spike"] = (0.5 * (p.usage_avg_last_5 - p.usage_avg_season)).fillna(0).clip(-3, 3)
    p["total_adjustment"] = p[["shot_zone_mismatch", "pace_adjustment", "usage_spike"]].sum(axis=1) - p.fatigue_score / 20
    return p.assign(game_date=game_date).reset_index(drop=True)


@dataclass(frozen=True)
class Feature:
    name: str
    source: str  # the table the value comes from
    column: str  # its column there
    low: float
    high: float
    default: float | None = None  # None: the median of the date's players that have it
    check_constant: bool = True  # a continuous value: constant across a date is suspicious
    # What is possible, when [low, high] is only what is usual (a warning outside it, not an
    # error: a real season can have a 135-pace stretch or a player back after 200 days).
    possible: tuple[float, float] | None = None


FEATURES: tuple[Feature, ...] = (
    Feature("points_avg_last_5", "player_daily_cache", "points_avg_last_5", 0, 80, possible=(0, math.inf)),
    Feature("points_avg_last_10", "player_daily_cache", "points_avg_last_10", 0, 80, possible=(0, math.inf)),
    Feature("points_avg_season", "player_daily_cache", "points_avg_season", 0, 80, possible=(0, math.inf)),
    Feature("points_std_last_10", "player_daily_cache", "points_std_last_10", 0, 50, possible=(0, math.inf)),
    Feature("minutes_avg_last_10", "player_daily_cache", "minutes_avg_last_10", 0, 60, possible=(0, math.inf)),
    Feature("usage_avg_last_10", "player_daily_cache", "usage_avg_last_10", 0, 100),
    Feature("ts_pct_last_10", "player_daily_cache", "ts_pct_last_10", 0, 1.5),
    Feature("games_played_season", "player_daily_cache", "games_played_season", 0, 90, default=0, check_constant=False),
    Feature("team_pace_last_10", "player_daily_cache", "team_pace_last_10", 70, 130, possible=(0, math.inf)),
    Feature("team_offensive_rating_last_10", "player_daily_cache", "team_offensive_rating_last_10", 70, 150, possible=(0, math.inf)),
    Feature("team_win_pct_season", "player_daily_cache", "team_win_pct_season", 0, 1),
    Feature("paint_rate_last_10", "player_shot_zone_analysis", "paint_rate_last_10", 0, 1),
    Feature("mid_range_rate_last_10", "player_shot_zone_analysis", "mid_range_rate_last_10", 0, 1),
    Feature("three_rate_last_10", "player_shot_zone_analysis", "three_rate_last_10", 0, 1),
    Feature("paint_fg_pct_last_20", "player_shot_zone_analysis", "paint_fg_pct_last_20", 0, 1),
    Feature("mid_range_fg_pct_last_20", "player_shot_zone_analysis", "mid_range_fg_pct_last_20", 0, 1),
    Feature("three_fg_pct_last_20", "player_shot_zone_analysis", "three_fg_pct_last_20", 0, 1),
    Feature("fatigue_score", "player_composite_factors", "fatigue_score", 0, 100),
    Feature("shot_zone_mismatch", "player_composite_factors", "shot_zone_mismatch", -10, 10, default=0),
    Feature("pace_adjustment", "player_composite_factors", "pace_adjustment", -3, 3, default=0),
    Feature("usage_spike", "player_composite_factors", "usage_spike", -3, 3, default=0),
    Feature("total_adjustment", "player_composite_factors", "total_adjustment", -21, 16, default=0),
    Feature("opp_defensive_rating_last_15", "team_defense_zone_analysis", "defensive_rating_last_15", 70, 150, possible=(0, math.inf)),
    Feature("opp_pace_last_15", "team_defense_zone_analysis", "opponent_pace_last_15", 70, 130, possible=(0, math.inf)),
    Feature("opp_paint_vs_league", "team_defense_zone_analysis", "paint_vs_league", -0.5, 0.5, possible=(-1, 1)),
    Feature("opp_three_vs_league", "team_defense_zone_analysis", "three_vs_league", -0.5, 0.5, possible=(-1, 1)),
    Feature("days_rest", "player_game_context", "days_rest", 0, 200, default=3, check_constant=False, possible=(0, math.inf)),
    Feature("back_to_back", "player_game_context", "back_to_back", 0, 1, check_constant=False),
    Feature("games_last_7_days", "player_game_context", "games_last_7_days", 0, 7, check_constant=False),
    Feature("minutes_last_7_days", "player_game_context", "minutes_last_7_days", 0, 420, possible=(0, math.inf)),
    Feature("home", "schedule", "home", 0, 1, check_constant=False),
    Feature("points_trend", "player_daily_cache", "points_trend", -80, 80, default=0, possible=(-math.inf, math.inf)),
    Feature("points_volatility", "player_daily_cache", "points_volatility", 0, 10, possible=(0, math.inf)),
)


def ml_feature_rows(players_today: pd.DataFrame, cache: pd.DataFrame, zones: pd.DataFrame,
                    composite: pd.DataFrame, defense_today: pd.DataFrame, context: pd.DataFrame,
                    game_date: date) -> tuple[pd.DataFrame, list[str]]:  # fmt: skip
    """One row per player playing on the date: every feature with `<feature>_source` (the
    table it came from, or "default"), a quality score (share of features not defaulted) and
    the target `actual_points` (the date's box score, never a feature). Returns the rows and
    the guard warnings; raises FeatureRangeError on a value outside its declared range."""
    base = players_today[["game_id", "player_id", "team_id", "opponent_team_id", "home", "pts"]]
    base = base.drop_duplicates("player_id").reset_index(drop=True)
    cache = cache.assign(
        points_trend=cache.points_avg_last_5 - cache.points_avg_last_10,
        points_volatility=_ratio(cache.points_std_last_10, cache.points_avg_last_10).values,
    )
    # Each source's rows lined up with the date's players once (the opponent's, for team
    # defence); a feature is then one column of arrays: no frame is built per feature.
    players, opponents = base.player_id.to_numpy(), base.opponent_team_id.to_numpy()
    aligned = {
        "player_daily_cache": _aligned(cache, "player_id", players),
        "player_shot_zone_analysis": _aligned(zones, "player_id", players),
        "player_composite_factors": _aligned(composite, "player_id", players),
        "player_game_context": _aligned(context, "player_id", players),
        "team_defense_zone_analysis": _aligned(defense_today, "team_id", opponents),
        "schedule": base,
    }
    n = len(base)
    out: dict[str, object] = {c: base[c] for c in ("game_id", "player_id", "team_id", "opponent_team_id")}
    out["game_date"] = game_date
    warnings: list[str] = []
    defaulted = np.zeros((n, len(FEATURES)), dtype=bool)
    for i, f in enumerate(FEATURES):
        source = aligned[f.source]
        values = (source[f.column].to_numpy(dtype="float64", na_value=np.nan) if f.column in source
                  else np.full(n, np.nan))  # fmt: skip
        missing = np.isnan(values)
        fallback = f.default if f.default is not None else (np.median(values[~missing]) if (~missing).any() else np.nan)
        if np.isnan(fallback):
            fallback = (f.low + f.high) / 2 if f.low >= 0 else 0.0
        filled = np.where(missing, fallback, values)
        out[f.name] = filled
        out[f"{f.name}_source"] = np.where(missing, "default", f.source)
        defaulted[:, i] = missing
        low, high = f.possible or (f.low, f.high)
        bad = np.flatnonzero((filled < low) | (filled > high))
        if len(bad):
            raise FeatureRangeError(
                f"ml_feature_store {game_date}: feature {f.name} outside its possible [{low}, {high}] for "
                f"{len(bad)} players, e.g. player {players[bad[0]]}: {filled[bad[0]]}"
            )
        unusual = np.flatnonzero((filled < f.low) | (filled > f.high)) if f.possible else []
        if len(unusual):
            warnings.append(f"{f.name}: outside the usual [{f.low}, {f.high}] for {len(unusual)} players, "
                            f"e.g. player {players[unusual[0]]}: {filled[unusual[0]]:g} (possible, but unusual)")  # fmt: skip
        if n > 1 and missing.all():
            warnings.append(f"{f.name}: defaulted for all {n} players")
        elif f.check_constant and n > 1 and len(np.unique(values[~missing])) <= 1:
            warnings.append(f"{f.name}: constant across the date's {int((~missing).sum())} players")
    out["feature_version"] = FEATURE_VERSION
    out["feature_quality_score"] = 1 - defaulted.mean(axis=1) if len(FEATURES) else np.ones(n)
    out["actual_points"] = base.pts.astype("int64")  # the target, from the date's box score
    return pd.DataFrame(out, index=base.index), warnings


def _aligned(table: pd.DataFrame, key: str, ids: np.ndarray) -> pd.DataFrame:
    """The table's rows in the order of `ids` (NaN where an id has no row)."""
    if not len(table):
        return pd.DataFrame(index=range(len(ids)))
    return table.set_index(key).reindex(ids).reset_index(drop=True)


# ---------------------------------------------------------------- tables

_KEY = (("game_date", "DATE"), ("season", "STRING"))
_ZONE_RATES = tuple((f"{z}_{k}_last_{n}", "FLOAT64") for n in (10, 20) for z in ZONES for k in ("rate", "fg_pct"))

TEAM_DEFENSE_ZONES = TableSpec(
    dataset="nba_precompute",
    name="team_defense_zone_analysis",
    columns=(
        *_KEY, ("team_id", "INT64"), ("games_in_window", "INT64"), ("window_first_date", "DATE"),
        *((f"{z}_{k}", "INT64") for z in ZONES for k in ("attempts", "makes")),
        *((f"{z}_fg_pct_allowed", "FLOAT64") for z in ZONES),
        *((f"league_{z}_fg_pct", "FLOAT64") for z in ZONES),
        *((f"{z}_vs_league", "FLOAT64") for z in ZONES),
        ("strongest_zone", "STRING"), ("weakest_zone", "STRING"),
        ("defensive_rating_last_15", "FLOAT64"), ("opponent_pace_last_15", "FLOAT64"),
    ),
    cluster_by=("team_id",),
    key=("game_date", "team_id"),
    required=("game_date", "team_id", "games_in_window"),
    description="Each team playing on game_date: zone defence over its last 15 earlier games.",
)  # fmt: skip

PLAYER_SHOT_ZONES = TableSpec(
    dataset="nba_precompute",
    name="player_shot_zone_analysis",
    columns=(
        *_KEY, ("player_id", "INT64"), ("team_id", "INT64"), ("games_last_10", "INT64"),
        ("games_last_20", "INT64"), *_ZONE_RATES, ("primary_scoring_zone", "STRING"),
        ("sample_quality", "STRING"),
    ),
    cluster_by=("player_id",),
    key=("game_date", "player_id"),
    required=("game_date", "player_id", "games_last_10", "sample_quality"),
    description="Each player playing on game_date: shot zones over his last 10 and 20 earlier games.",
)  # fmt: skip

PLAYER_DAILY_CACHE = TableSpec(
    dataset="nba_precompute",
    name="player_daily_cache",
    columns=(
        *_KEY, ("player_id", "INT64"), ("team_id", "INT64"), ("games_played_season", "INT64"),
        ("points_avg_season", "FLOAT64"), ("points_avg_last_5", "FLOAT64"),
        ("points_avg_last_10", "FLOAT64"), ("points_std_last_10", "FLOAT64"),
        ("minutes_avg_last_10", "FLOAT64"), ("usage_avg_last_5", "FLOAT64"),
        ("usage_avg_last_10", "FLOAT64"), ("usage_avg_season", "FLOAT64"), ("ts_pct_last_10", "FLOAT64"),
        ("team_pace_last_10", "FLOAT64"), ("team_offensive_rating_last_10", "FLOAT64"),
        ("team_win_pct_season", "FLOAT64"),
    ),
    cluster_by=("player_id",),
    key=("game_date", "player_id"),
    required=("game_date", "player_id", "games_played_season", "points_avg_season"),
    description="Each player playing on game_date with ≥ 3 earlier games: his windows and his team's.",
)  # fmt: skip

PLAYER_COMPOSITE = TableSpec(
    dataset="nba_precompute",
    name="player_composite_factors",
    columns=(
        *_KEY, ("player_id", "INT64"), ("team_id", "INT64"), ("opponent_team_id", "INT64"),
        ("fatigue_score", "FLOAT64"), ("shot_zone_mismatch", "FLOAT64"),
        ("shot_zone_mismatch_known", "BOOL"), ("pace_adjustment", "FLOAT64"),
        ("usage_spike", "FLOAT64"), ("total_adjustment", "FLOAT64"),
    ),
    cluster_by=("player_id",),
    key=("game_date", "player_id"),
    required=("game_date", "player_id", "fatigue_score", "total_adjustment"),
    description="Each cached player on game_date: fatigue, shot-zone mismatch, pace, usage spike.",
)  # fmt: skip

ML_FEATURE_STORE = TableSpec(
    dataset="nba_precompute",
    name="ml_feature_store",
    columns=(
        *_KEY, ("game_id", "STRING"), ("player_id", "INT64"), ("team_id", "INT64"),
        ("opponent_team_id", "INT64"),
        *((f.name, "FLOAT64") for f in FEATURES),
        *((f"{f.name}_source", "STRING") for f in FEATURES),
        ("feature_version", "STRING"), ("feature_quality_score", "FLOAT64"),
        ("actual_points", "INT64"),
    ),
    cluster_by=("player_id",),
    key=("game_date", "player_id"),
    required=("game_date", "player_id", "feature_version", "feature_quality_score"),
    description="One row per player playing on game_date: pre-game features (+ where each came "
    "from) and the target actual_points.",
)  # fmt: skip

PRECOMPUTE_TABLES = (TEAM_DEFENSE_ZONES, PLAYER_SHOT_ZONES, PLAYER_DAILY_CACHE, PLAYER_COMPOSITE, ML_FEATURE_STORE)


# ---------------------------------------------------------------- the phase


def _today(run: ProcessorRun, spec: TableSpec) -> pd.DataFrame:
    return run.warehouse.query(f"SELECT * FROM {spec.id} WHERE game_date = @game_date", {"game_date": run.game_date})


def _players_today(run: ProcessorRun) -> pd.DataFrame:
    """Who plays on the date: the date's box score (the historical definition)."""
    return run.warehouse.query(
        f"SELECT game_id, player_id, team_id, opponent_team_id, home, pts FROM {PLAYER_GAME_SUMMARY.id} "
        "WHERE game_date = @game_date", {"game_date": run.game_date},
    )  # fmt: skip


# The windows run in the warehouse (tasks/sql/<table>.sql): each player's (team's) earlier
# games of the season numbered newest first, the last N aggregated, only the date's rows
# returned and written by the warehouse itself (INSERT ... SELECT), so a date costs the same
# early and late in a season. Window starts are parameters computed here; the SQL is written
# once for DuckDB and BigQuery (tasks/sql, beside analytics' SQL: sql_file).


def team_defense_zones(run: ProcessorRun) -> Query:
    """Each team playing on the date: opponent FG% by zone over its last 15 games, against
    the league's over the last 30 days (the formula: team_defense_zone_analysis)."""
    return run.sql_rows(defense_window=DEFENSE_WINDOW, league_since=run.game_date - timedelta(days=LEAGUE_DAYS))


def player_shot_zones(run: ProcessorRun) -> Query:
    """Zone rates and FG% over a player's last 10 and 20 games (player_shot_zone_analysis)."""
    return run.sql_rows()


def daily_cache(run: ProcessorRun) -> Query:
    """Scoring, minutes, usage windows of players with ≥ 3 earlier games, and their team's
    form (player_daily_cache, team_form)."""
    return run.sql_rows(min_games=CACHE_MIN_GAMES)


def composite_factors(run: ProcessorRun) -> Query:
    """Fatigue, shot-zone mismatch, pace and usage spike of each cached player
    (player_composite_factors, with team_form's pace and league_pace)."""
    return run.sql_rows(league_since=run.game_date - timedelta(days=LEAGUE_DAYS))


def feature_store(run: ProcessorRun) -> pd.DataFrame:
    """Fails the date on a feature outside its declared range; a feature constant or wholly
    defaulted across the date is logged as a warning and kept in the ledger's detail."""
    rows, warnings = ml_feature_rows(
        _players_today(run), _today(run, PLAYER_DAILY_CACHE), _today(run, PLAYER_SHOT_ZONES),
        _today(run, PLAYER_COMPOSITE), _today(run, TEAM_DEFENSE_ZONES), _today(run, PLAYER_GAME_CONTEXT),
        run.game_date,
    )  # fmt: skip
    if warnings:
        run_logger().warning("ml_feature_store %s: %s", run.game_date, "; ".join(warnings))
        run.detail["warnings"] = warnings
    return rows.assign(season=run.season)


def _season(name: str) -> Read:
    return Read(name, "season_through")


PRECOMPUTE = Phase(
    name="precompute",
    processors=(
        Processor(TEAM_DEFENSE_ZONES.name, TEAM_DEFENSE_ZONES, team_defense_zones,
                  reads=(_season(TEAM_DEFENSE.name), Read(TEAM_OFFENSE.name)),
                  sql=(sql_file("team_defense_zone_analysis"),)),
        Processor(PLAYER_SHOT_ZONES.name, PLAYER_SHOT_ZONES, player_shot_zones,
                  reads=(_season(PLAYER_GAME_SUMMARY.name),), sql=(sql_file("player_shot_zone_analysis"),)),
        Processor(PLAYER_DAILY_CACHE.name, PLAYER_DAILY_CACHE, daily_cache,
                  reads=(_season(PLAYER_GAME_SUMMARY.name), _season(TEAM_OFFENSE.name)),
                  sql=(sql_file("player_daily_cache"),)),
        Processor(PLAYER_COMPOSITE.name, PLAYER_COMPOSITE, composite_factors,
                  reads=(Read(PLAYER_DAILY_CACHE.name), Read(PLAYER_SHOT_ZONES.name), Read(TEAM_DEFENSE_ZONES.name),
                         Read(PLAYER_GAME_CONTEXT.name), _season(TEAM_OFFENSE.name), Read(PLAYER_GAME_SUMMARY.name)),
                  after=(TEAM_DEFENSE_ZONES.name, PLAYER_SHOT_ZONES.name, PLAYER_DAILY_CACHE.name),
                  sql=(sql_file("player_composite_factors"),)),
        Processor(ML_FEATURE_STORE.name, ML_FEATURE_STORE, feature_store,
                  reads=(Read(PLAYER_GAME_SUMMARY.name), Read(PLAYER_DAILY_CACHE.name), Read(PLAYER_SHOT_ZONES.name),
                         Read(PLAYER_COMPOSITE.name), Read(TEAM_DEFENSE_ZONES.name), Read(PLAYER_GAME_CONTEXT.name)),
                  after=(PLAYER_DAILY_CACHE.name, PLAYER_SHOT_ZONES.name, PLAYER_COMPOSITE.name,
                         TEAM_DEFENSE_ZONES.name)),
    ),
    bootstrap_days=BOOTSTRAP_DAYS,
    seasons=seasons_of,
)  # fmt: skip


def precompute_processable(dates: list[date]) -> list[date]:
    """The dates precompute writes: game dates after their season's first 14 days. The season
    start is the source schedule's first date of the season (holds for any season)."""
    return PRECOMPUTE.processable(dates)
