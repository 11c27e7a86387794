"""The precompute and player-context windows as SQL (tasks/sql, run by the processors) on small hand-built
DuckDB warehouses: values worked out by hand, and every function against the pandas formula
of tasks/analytics.py / tasks/precompute.py on the same rows, date by date, two seasons in
one table. No Prefect, no bundled season: each test builds its warehouse in tmp_path."""

from __future__ import annotations

import math
import re
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from blocks.warehouse import TableSpec
from blocks.warehouse_duckdb import DuckDBWarehouse
from tasks.analytics import (
    PLAYER_GAME_CONTEXT,
    PLAYER_GAME_SUMMARY,
    TEAM_DEFENSE,
    TEAM_OFFENSE,
    ZONES,
    player_game_context,
)
from tasks.precompute import (
    CACHE_MIN_GAMES,
    ML_FEATURE_STORE,
    PLAYER_COMPOSITE,
    PLAYER_DAILY_CACHE,
    PLAYER_SHOT_ZONES,
    TEAM_DEFENSE_ZONES,
    league_pace,
    ml_feature_rows,
    player_composite_factors,
    player_daily_cache,
    player_shot_zone_analysis,
    team_defense_zone_analysis,
    team_form,
)
from tasks.raw import RAW_PLAYER_BOXSCORES
from blocks.warehouse import Query
from engine.processors import ProcessorRun
from tasks.phases import PROCESSORS


def _run(name: str, wh, game_date, season) -> ProcessorRun:
    return ProcessorRun(PROCESSORS[name], game_date, season, wh, None, None)


def _rows(name: str):
    """A processor's compute on a warehouse, as `fn(wh, game_date, season)`."""

    def call(wh, game_date, season):
        run = _run(name, wh, game_date, season)
        rows = run.processor.compute(run)  # a Query: run it and fetch what it would write
        return wh.query(rows.sql, rows.params) if isinstance(rows, Query) else rows

    return call


player_game_context_rows = _rows("player_game_context")
team_defense_zone_analysis_rows = _rows("team_defense_zone_analysis")
player_shot_zone_analysis_rows = _rows("player_shot_zone_analysis")
player_daily_cache_rows = _rows("player_daily_cache")
player_composite_factors_rows = _rows("player_composite_factors")


def ml_feature_store_rows(wh, game_date, season):
    run = _run("ml_feature_store", wh, game_date, season)
    return run.processor.compute(run), run.detail.get("warnings", [])


# Every SQL file a processor runs, by processor.
SQL_FILES = {name: path for name, p in PROCESSORS.items() for path in p.sql}

HISTORY = (RAW_PLAYER_BOXSCORES, PLAYER_GAME_SUMMARY, TEAM_OFFENSE, TEAM_DEFENSE)
SAME_DATE = (PLAYER_GAME_CONTEXT, TEAM_DEFENSE_ZONES, PLAYER_SHOT_ZONES, PLAYER_DAILY_CACHE, PLAYER_COMPOSITE)
_DEFAULTS = {"INT64": 0, "FLOAT64": 0.0, "STRING": "", "BOOL": False}


class League:
    """Rows of the four history tables (raw box scores, player game summary, team offense,
    team defense) in a DuckDB warehouse."""

    def __init__(self, path) -> None:
        self.wh = DuckDBWarehouse(path=str(path))
        self.wh.ensure_tables([*HISTORY, *SAME_DATE, ML_FEATURE_STORE])
        self.rows: dict[TableSpec, list[dict]] = {spec: [] for spec in HISTORY}

    def game(self, season: str, day: date, game_id: str, home: int, away: int,
             players: dict[int, tuple[int, dict]], teams: dict[int, dict] | None = None) -> None:  # fmt: skip
        """players: player_id → (team_id, player_game_summary values); teams: team_id →
        team offense and team defense values."""
        teams = teams or {}
        for team, opp in ((home, away), (away, home)):
            t = {"pace": 100.0, "offensive_rating": 110.0, "win": team == home, "defensive_rating": 108.0,
                 "opponent_pace": 99.0, **teams.get(team, {})}  # fmt: skip
            base = {"game_id": game_id, "game_date": day, "season": season, "team_id": team,
                    "opponent_team_id": opp, "home": team == home}  # fmt: skip
            self.rows[TEAM_OFFENSE].append({**base, **t})
            self.rows[TEAM_DEFENSE].append({**base, **t})
        for player, (team, values) in players.items():
            base = {"game_id": game_id, "game_date": day, "season": season, "player_id": player, "team_id": team,
                    "opponent_team_id": away if team == home else home, "home": team == home,
                    "minutes": 30.0, "pts": 10, "win": team == home}  # fmt: skip
            row = {**base, **values}
            self.rows[PLAYER_GAME_SUMMARY].append(row)
            raw = {**row, "min": row["minutes"], "opp_team_id": row["opponent_team_id"]}
            self.rows[RAW_PLAYER_BOXSCORES].append(raw)

    def write(self) -> list[date]:
        """Every row at once: one append per table (a date partition at a time costs a
        transaction each; these tables start empty)."""
        for spec, rows in self.rows.items():
            self.wh.append(spec, _frame(spec, rows))
        return sorted({r["game_date"] for r in self.rows[TEAM_OFFENSE]})


def _frame(spec: TableSpec, rows: list[dict]) -> pd.DataFrame:
    """Rows with every column of the table (defaults for those not given)."""
    cols = {}
    for col, kind in spec.columns:
        default = datetime(2024, 1, 1, tzinfo=timezone.utc) if kind == "TIMESTAMP" else _DEFAULTS.get(kind)
        cols[col] = [r.get(col, default) for r in rows]
    return pd.DataFrame(cols)


def _q(wh, sql: str, **params) -> pd.DataFrame:
    return wh.query(sql, params)


# ---------------------------------------------------------------- the pandas formulas' inputs


def _season_through(wh, spec: TableSpec, season: str, day: date) -> pd.DataFrame:
    return _q(wh, f"SELECT * FROM {spec.id} WHERE season = @season AND game_date <= @game_date",
              season=season, game_date=day)  # fmt: skip


def _of_date(wh, spec: TableSpec, day: date) -> pd.DataFrame:
    return _q(wh, f"SELECT * FROM {spec.id} WHERE game_date = @game_date", game_date=day)


def _players_today(wh, day: date) -> pd.DataFrame:
    return _q(wh, f"SELECT game_id, player_id, team_id, opponent_team_id, home, pts FROM {PLAYER_GAME_SUMMARY.id} "
              "WHERE game_date = @game_date", game_date=day)  # fmt: skip


def pandas_rows(wh, table: str, day: date, season: str):
    """What the current pandas formula gives for the date, from the same warehouse."""
    if table == "player_game_context":
        earlier = _q(wh, "SELECT game_id, game_date, season, player_id, team_id, min AS minutes FROM "
                     "nba_raw.player_boxscores WHERE season = @season AND game_date < @game_date",
                     season=season, game_date=day)  # fmt: skip
        today = _q(wh, f"SELECT game_id, game_date, season, player_id, team_id, minutes FROM {PLAYER_GAME_SUMMARY.id} "
                   "WHERE game_date = @game_date", game_date=day)  # fmt: skip
        return player_game_context(pd.concat([earlier, today], ignore_index=True), day)
    if table == "team_defense_zone_analysis":
        teams = _q(wh, f"SELECT game_id, team_id, opponent_team_id FROM {TEAM_OFFENSE.id} WHERE game_date = @game_date",
                   game_date=day)  # fmt: skip
        out = team_defense_zone_analysis(_season_through(wh, TEAM_DEFENSE, season, day), teams, day)
    elif table == "player_shot_zone_analysis":
        summary = _season_through(wh, PLAYER_GAME_SUMMARY, season, day)
        out = player_shot_zone_analysis(summary, _players_today(wh, day), day)
    elif table == "player_daily_cache":
        summary = _season_through(wh, PLAYER_GAME_SUMMARY, season, day)
        offense = _season_through(wh, TEAM_OFFENSE, season, day)
        out = player_daily_cache(summary, offense, _players_today(wh, day), day)
    elif table == "player_composite_factors":
        offense = _season_through(wh, TEAM_OFFENSE, season, day)
        out = player_composite_factors(
            _of_date(wh, PLAYER_DAILY_CACHE, day), _of_date(wh, PLAYER_SHOT_ZONES, day),
            _of_date(wh, TEAM_DEFENSE_ZONES, day), _of_date(wh, PLAYER_GAME_CONTEXT, day),
            team_form(offense, day).pace_last_10, league_pace(offense, day), _players_today(wh, day), day,
        )  # fmt: skip
    else:
        rows, warnings = ml_feature_rows(
            _players_today(wh, day), _of_date(wh, PLAYER_DAILY_CACHE, day), _of_date(wh, PLAYER_SHOT_ZONES, day),
            _of_date(wh, PLAYER_COMPOSITE, day), _of_date(wh, TEAM_DEFENSE_ZONES, day),
            _of_date(wh, PLAYER_GAME_CONTEXT, day), day,
        )  # fmt: skip
        return rows.assign(season=season), warnings
    return out.assign(season=season)


def assert_same(got: pd.DataFrame, want: pd.DataFrame, key: list[str]) -> None:
    # The formula may carry its working columns; what the processor writes is compared.
    assert set(got.columns) <= set(want.columns), set(got.columns) - set(want.columns)
    want = want[list(got.columns)]
    assert len(got) == len(want)
    if not len(want):
        return
    g, w = (f.sort_values(key).reset_index(drop=True) for f in (got, want))
    for col in want.columns:
        if pd.api.types.is_float_dtype(w[col]):
            np.testing.assert_allclose(g[col].to_numpy(float), w[col].to_numpy(float), rtol=0, atol=1e-9,
                                       equal_nan=True, err_msg=col)  # fmt: skip
        else:
            assert _values(g[col]) == _values(w[col]), col


def _values(s: pd.Series) -> list:
    """Plain values: a DATE read back from the warehouse is a Timestamp, the formula's a date
    (the table's writer conforms both)."""
    return [None if pd.isna(v) else v.date() if isinstance(v, pd.Timestamp) else v for v in s.astype(object)]


# ---------------------------------------------------------------- hand-worked values

SEASON, NEXT = "2023-24", "2024-25"
D0 = date(2024, 1, 1)


def _day(i: int) -> date:
    return D0 + timedelta(days=i)


@pytest.fixture(scope="module")
def one_player(tmp_path_factory) -> League:
    """Player 7 (team 1) plays days 1..12 with pts = k and k three-point attempts in his k-th
    game, one paint attempt each; day 13 (the date looked at) he scores 100, day 14 1000."""
    league = League(tmp_path_factory.mktemp("one_player") / "wh.duckdb")
    for k in range(1, 15):
        pts = {13: 100, 14: 1000}.get(k, k)
        league.game(SEASON, _day(k), f"g{k:03d}", 1, 2, {7: (1, {
            "pts": pts, "minutes": 10.0 + k, "usage_rate": 20.0 + k, "fga": 10, "fta": 0,
            "paint_attempts": 1, "paint_makes": 1, "three_attempts": k, "three_makes": 0})})  # fmt: skip
    league.write()
    return league


def test_last_n_windows_exclude_the_date_and_later_dates(one_player):
    wh, day = one_player.wh, _day(13)
    cache = player_daily_cache_rows(wh, day, SEASON).set_index("player_id").loc[7]
    assert cache.games_played_season == 12
    assert cache.points_avg_season == pytest.approx(6.5)  # 1..12, not 100 nor 1000
    assert cache.points_avg_last_5 == pytest.approx(10.0)  # 8..12
    assert cache.points_avg_last_10 == pytest.approx(7.5)  # 3..12
    assert cache.minutes_avg_last_10 == pytest.approx(17.5)
    assert cache.usage_avg_last_5 == pytest.approx(30.0)
    assert cache.ts_pct_last_10 == pytest.approx(75 / 200)
    zones = player_shot_zone_analysis_rows(wh, day, SEASON).set_index("player_id").loc[7]
    assert (zones.games_last_10, zones.games_last_20, zones.sample_quality) == (10, 12, "high")
    assert zones.three_rate_last_10 == pytest.approx(75 / 85)  # three attempts 3..12, 10 paint
    assert zones.three_rate_last_20 == pytest.approx(78 / 90)
    assert zones.primary_scoring_zone == "paint"  # no three made
    ctx = player_game_context_rows(wh, day, SEASON).set_index("player_id").loc[7]
    assert (ctx.games_played_season, ctx.days_rest, ctx.back_to_back) == (12, 0, True)
    assert (ctx.games_last_7_days, ctx.games_last_14_days, ctx.back_to_backs_last_14_days) == (7, 12, 11)
    assert ctx.minutes_last_7_days == pytest.approx(sum(10.0 + k for k in range(6, 13)))
    defense = team_defense_zone_analysis_rows(wh, day, SEASON).set_index("team_id")
    assert defense.loc[1].games_in_window == 12 and pd.Timestamp(defense.loc[1].window_first_date).date() == _day(1)


def test_points_std_is_the_sample_std(one_player):
    std = player_daily_cache_rows(one_player.wh, _day(13), SEASON).points_std_last_10.iloc[0]
    assert std == pytest.approx(np.std(np.arange(3, 13), ddof=1))  # 3.0277, not ddof=0's 2.8723
    assert std == pytest.approx(math.sqrt(sum((x - 7.5) ** 2 for x in range(3, 13)) / 9))


def test_first_game_of_a_new_season_sees_none_of_the_previous_one(tmp_path):
    """Season NEXT starts the day after SEASON's last game: the windows are of the season,
    not of the last days."""
    league = League(tmp_path / "wh.duckdb")
    for k in range(1, 13):
        league.game(SEASON, _day(k), f"a{k:03d}", 1, 2, {7: (1, {"pts": 50, "paint_attempts": 5, "paint_makes": 5})})
    for k in range(13, 13 + CACHE_MIN_GAMES + 1):
        league.game(NEXT, _day(k), f"b{k:03d}", 1, 2, {7: (1, {"pts": k, "paint_attempts": 1, "paint_makes": 0})})
    league.write()
    wh, first = league.wh, _day(13)
    ctx = player_game_context_rows(wh, first, NEXT)
    assert ctx[["games_played_season", "games_last_7_days", "games_last_14_days", "back_to_backs_last_14_days"]
               ].iloc[0].tolist() == [0, 0, 0, 0]  # fmt: skip
    assert ctx.minutes_last_7_days.iloc[0] == 0.0 and pd.isna(ctx.days_rest.iloc[0])
    assert not ctx.back_to_back.iloc[0]
    assert player_shot_zone_analysis_rows(wh, first, NEXT).empty
    assert player_daily_cache_rows(wh, first, NEXT).empty
    assert team_defense_zone_analysis_rows(wh, first, NEXT).empty
    # the previous season, looked at from its own season, is still there
    assert player_game_context_rows(wh, first, SEASON).games_played_season.iloc[0] == 12
    last = _day(13 + CACHE_MIN_GAMES)
    cache = player_daily_cache_rows(wh, last, NEXT).iloc[0]
    assert cache.games_played_season == CACHE_MIN_GAMES
    assert cache.points_avg_season == pytest.approx(np.mean(range(13, 13 + CACHE_MIN_GAMES)))
    zones = player_shot_zone_analysis_rows(wh, last, NEXT).iloc[0]
    assert zones.paint_fg_pct_last_20 == 0.0 and pd.isna(zones.primary_scoring_zone)
    assert zones.games_last_20 == CACHE_MIN_GAMES and zones.sample_quality == "low"


def test_cache_needs_cache_min_games_earlier_games(tmp_path):
    league = League(tmp_path / "wh.duckdb")
    for k in range(1, CACHE_MIN_GAMES + 2):
        league.game(SEASON, _day(k), f"g{k:03d}", 1, 2, {7: (1, {}), 8: (2, {})})
    league.game(SEASON, _day(20), "g020", 1, 2, {8: (2, {})})  # 8's games before day 20: all of them
    league.write()
    wh = league.wh
    assert player_daily_cache_rows(wh, _day(CACHE_MIN_GAMES), SEASON).empty  # CACHE_MIN_GAMES - 1 earlier
    got = player_daily_cache_rows(wh, _day(CACHE_MIN_GAMES + 1), SEASON)
    assert sorted(got.player_id) == [7, 8] and set(got.games_played_season) == {CACHE_MIN_GAMES}
    # shot zones need a single earlier game
    assert len(player_shot_zone_analysis_rows(wh, _day(2), SEASON)) == 2


def test_zone_ties_go_to_the_first_zone_and_unknown_zones_are_skipped(tmp_path):
    """League over the day: paint 4/8, mid-range 2/4 (team 2 allowed no mid-range shot),
    three 3/8. Team 1 allowed 50 % everywhere: paint and mid-range tie at 0 → paint is the
    strongest, three (+0.125) the weakest. Team 2: paint 0, mid-range unknown (skipped),
    three 1/4 (−0.125). A player's 6 paint points and 6 three points tie → paint."""
    league = League(tmp_path / "wh.duckdb")
    even = {f"opp_{z}_{k}": n for z in ZONES for k, n in (("attempts", 4), ("makes", 2))}
    no_mid = {**even, "opp_mid_range_attempts": 0, "opp_mid_range_makes": 0, "opp_three_makes": 1}
    league.game(SEASON, _day(1), "g001", 1, 2, {7: (1, {"paint_attempts": 3, "paint_makes": 3,
                                                        "three_attempts": 2, "three_makes": 2})},
                teams={1: even, 2: no_mid})  # fmt: skip
    league.game(SEASON, _day(2), "g002", 1, 2, {7: (1, {})})
    league.write()
    d = team_defense_zone_analysis_rows(league.wh, _day(2), SEASON).set_index("team_id")
    assert d.loc[1].paint_vs_league == 0 and d.loc[1].mid_range_vs_league == 0
    assert d.loc[1].three_vs_league == pytest.approx(0.125)
    assert (d.loc[1].strongest_zone, d.loc[1].weakest_zone) == ("paint", "three")
    assert pd.isna(d.loc[2].mid_range_vs_league)
    assert (d.loc[2].strongest_zone, d.loc[2].weakest_zone) == ("three", "paint")
    assert player_shot_zone_analysis_rows(league.wh, _day(2), SEASON).primary_scoring_zone.tolist() == ["paint"]
    for table, fn in (("team_defense_zone_analysis", team_defense_zone_analysis_rows),
                      ("player_shot_zone_analysis", player_shot_zone_analysis_rows)):  # fmt: skip
        key = ["team_id"] if table.startswith("team") else ["player_id"]
        assert_same(fn(league.wh, _day(2), SEASON), pandas_rows(league.wh, table, _day(2), SEASON), key)


# ---------------------------------------------------------------- against the pandas formulas


def _random_league(path, seed: int = 5) -> tuple[League, list[tuple[date, str]]]:
    """Two 40-day seasons of a 4-team league (2 games most days, 5 players a team, some sit
    out): random box scores with zero-attempt zones and NULL usage."""
    rng = np.random.default_rng(seed)
    league = League(path)
    roster = {team: [team * 10 + i for i in range(5)] for team in (1, 2, 3, 4)}
    dates = []
    n = 0
    for season, start in ((SEASON, date(2024, 1, 1)), (NEXT, date(2024, 3, 1))):
        for i in range(0, 40):
            day = start + timedelta(days=i)
            if rng.random() < 0.25 and i not in (0, 9, 39):  # day 9: 30 days before the last
                continue  # no games that day
            dates.append((day, season))
            order = rng.permutation([1, 2, 3, 4])
            for home, away in ((order[0], order[1]), (order[2], order[3]))[: 1 + int(rng.random() < 0.7)]:
                n += 1
                players = {}
                for team in (home, away):
                    for p in roster[team]:
                        if rng.random() < 0.2:
                            continue
                        z = {f"{zone}_attempts": int(rng.integers(0, 6) * (rng.random() < 0.8)) for zone in ZONES}
                        z |= {f"{zone}_makes": int(rng.integers(0, z[f"{zone}_attempts"] + 1)) for zone in ZONES}
                        fga, fta = int(rng.integers(0, 20)), int(rng.integers(0, 8)) * int(rng.random() < 0.7)
                        players[int(p)] = (int(team), {
                            "pts": int(rng.integers(0, 2 * fga + fta + 1)), "minutes": float(rng.integers(0, 40)),
                            "usage_rate": None if rng.random() < 0.1 else float(rng.uniform(5, 40)),
                            "fga": fga, "fta": fta, **z,
                        })  # fmt: skip
                teams = {}
                for t in (home, away):
                    attempts = {zone: int(rng.integers(0, 40)) for zone in ZONES}
                    teams[int(t)] = {
                        "pace": float(rng.uniform(92, 108)), "offensive_rating": float(rng.uniform(95, 125)),
                        "defensive_rating": float(rng.uniform(95, 125)), "opponent_pace": float(rng.uniform(92, 108)),
                        **{f"opp_{zone}_attempts": a for zone, a in attempts.items()},
                        **{f"opp_{zone}_makes": int(a * rng.uniform(0.35, 0.6)) for zone, a in attempts.items()},
                    }  # fmt: skip
                league.game(season, day, f"{n:04d}", int(home), int(away), players, teams)
    league.write()
    return league, dates


KEYS = {
    "player_game_context": ["game_id", "player_id"],
    "team_defense_zone_analysis": ["team_id"],
    "player_shot_zone_analysis": ["player_id"],
    "player_daily_cache": ["player_id"],
    "player_composite_factors": ["player_id"],
}


def test_every_window_matches_the_pandas_formula_over_two_seasons(tmp_path):
    """Table after table in the phases' order (context, the three history windows, the
    composite, the feature store), dates of two seasons in one warehouse: each compared with
    its pandas formula, then stored for the tables that read it."""
    league, every = _random_league(tmp_path / "wh.duckdb")
    wh = league.wh
    # each season's first two dates (no or one earlier game) and its last (full windows, a
    # game exactly LEAGUE_DAYS before it): every date would take seconds more, not more cases
    dates, lasts = [], []
    for season in (SEASON, NEXT):
        of = [d for d in every if d[1] == season]
        dates += [*of[:2], of[-1]]
        lasts.append(of[-1])
    steps = (
        ("player_game_context", player_game_context_rows, PLAYER_GAME_CONTEXT),
        ("team_defense_zone_analysis", team_defense_zone_analysis_rows, TEAM_DEFENSE_ZONES),
        ("player_shot_zone_analysis", player_shot_zone_analysis_rows, PLAYER_SHOT_ZONES),
        ("player_daily_cache", player_daily_cache_rows, PLAYER_DAILY_CACHE),
        ("player_composite_factors", player_composite_factors_rows, PLAYER_COMPOSITE),
    )
    seen = {}
    for name, fn, spec in steps:
        frames = []
        for day, season in dates:
            got = fn(wh, day, season)
            assert sorted(got.columns) == sorted(spec.column_names)
            assert_same(got, pandas_rows(wh, name, day, season), KEYS[name])
            frames.append(got)
        wh.append(spec, pd.concat(frames, ignore_index=True))
        seen[name] = sum(map(len, frames))
    seen["ml_feature_store"] = 0
    for day, season in lasts:  # the same pandas formula on both sides (ml_feature_rows)
        got = _outcome(ml_feature_store_rows, wh, day, season)
        want = _outcome(pandas_rows, wh, "ml_feature_store", day, season)
        if isinstance(want, Exception):  # a feature out of its range: both refuse the date alike
            assert type(got) is type(want) and str(got) == str(want)
            continue
        assert_same(got[0], want[0], ["player_id"])
        assert got[1] == want[1]
        seen["ml_feature_store"] += len(got[0])
    assert all(n > 10 for n in seen.values()), seen  # every table had rows to compare


def _outcome(fn, *args):
    try:
        return fn(*args)
    except Exception as exc:  # noqa: BLE001 (compared with the other side's)
        return exc


def test_sql_is_written_for_both_warehouses():
    """No DuckDB-only syntax; no `@name` inside a comment (the BigQuery emulator binds
    parameters there too); only parameters the functions pass."""
    for name, path in SQL_FILES.items():
        sql = path.read_text()
        code = "\n".join(line.split("--")[0] for line in sql.splitlines())
        for banned in ("::", "DISTINCT ON", "FILTER (", "FILTER(", "LIST(", "date_diff", "DATE_SUB"):
            assert banned.lower() not in code.lower(), (name, banned)
        # INT64 is the one type name both know (DuckDB has no FLOAT64, BigQuery no DOUBLE).
        types = "INT64|FLOAT64|DOUBLE|BIGINT|INTEGER|NUMERIC|DECIMAL|VARCHAR|STRING|TEXT|FLOAT|DATE|TIMESTAMP|BOOL|BOOLEAN"
        assert {t.upper() for t in re.findall(rf"\bAS\s+({types})\s*\)", code, re.I)} <= {"INT64"}, name
        assert not re.search(r"--[^\n]*@", sql), name
        assert set(re.findall(r"@(\w+)", code)) <= {"game_date", "season", "since_7", "since_14", "since_15",
                                                    "defense_window", "league_since", "min_games"}, name  # fmt: skip
