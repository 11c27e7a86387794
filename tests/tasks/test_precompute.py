"""Precompute windows, bootstrap, look-ahead and guards.

Window figures are checked against pandas computations straight over the bundled CSVs
(player box scores and shots, strictly before the date); the functions under test get
frames built from the same CSVs. Look-ahead and bootstrap run the real processors on copies
of the built four-week warehouse."""

from __future__ import annotations

import shutil
from datetime import date

import numpy as np
import pandas as pd
import pytest

from blocks.settings import get_settings, reset_settings
from engine.phase_run import run_phase_directly
from engine.processors import plan_phase
from engine.runner import statuses_of
from tasks import precompute as pc
from tasks.analytics import ANALYTICS
from tasks.phases import PHASE, PHASES, run_directly
from tasks.raw import RAW
from tests.conftest import BUILT_END, BUILT_START, SEASON_DIR

PAINT = ("Restricted Area", "In The Paint (Non-RA)")


# ---------------------------------------------------------------- frames from the CSVs


@pytest.fixture(scope="module")
def summary(season_csv) -> pd.DataFrame:
    """player_game_summary-shaped rows for the whole season, made here from the CSVs."""
    box, shots = season_csv["player_box"], season_csv["shots"]
    zone = np.where(shots.SHOT_TYPE.str.startswith("3"), "three",
                    np.where(shots.BASIC_ZONE.isin(PAINT), "paint", "mid_range"))  # fmt: skip
    s = shots.assign(zone=zone)
    counts = s.groupby(["GAME_ID", "PLAYER_ID", "zone"]).SHOT_MADE.agg(["size", "sum"]).unstack("zone", fill_value=0)
    zones = pd.DataFrame({f"{z}_attempts": counts["size"][z] for z in ("paint", "mid_range", "three")})
    for z in ("paint", "mid_range", "three"):
        zones[f"{z}_makes"] = counts["sum"][z]
    out = box.rename(columns=str.lower).rename(columns={"min": "minutes"})
    out = out.merge(zones, left_on=["game_id", "player_id"], right_index=True, how="left").fillna(
        {c: 0 for c in zones.columns}
    )
    return out.assign(usage_rate=np.nan, game_date=pd.to_datetime(out.game_date).dt.date)


def _today(box: pd.DataFrame, d: date) -> pd.DataFrame:
    t = box[box.GAME_DATE == str(d)]
    return pd.DataFrame({"game_id": t.GAME_ID, "player_id": t.PLAYER_ID, "team_id": t.TEAM_ID,
                         "opponent_team_id": t.OPP_TEAM_ID, "home": t.HOME_AWAY == "H", "pts": t.PTS})  # fmt: skip


def _offense(season_csv) -> pd.DataFrame:
    """Team offense rows from the CSVs: pace from the box totals and the schedule's overtimes."""
    box, sched = season_csv["player_box"], season_csv["schedule"]
    t = box.groupby(["GAME_ID", "GAME_DATE", "TEAM_ID"])[["PTS", "FGA", "FTA", "OREB", "TOV", "WL"]].agg(
        {"PTS": "sum", "FGA": "sum", "FTA": "sum", "OREB": "sum", "TOV": "sum", "WL": "first"}).reset_index()  # fmt: skip
    t = t.merge(sched[["GAME_ID", "NUM_OT"]], on="GAME_ID")
    poss = t.FGA + 0.44 * t.FTA - t.OREB + t.TOV
    return pd.DataFrame({"game_id": t.GAME_ID, "game_date": pd.to_datetime(t.GAME_DATE).dt.date,
                         "team_id": t.TEAM_ID, "pace": poss * 48 / ((240 + 25 * t.NUM_OT) / 5),
                         "offensive_rating": 100 * t.PTS / poss, "win": t.WL == "W"})  # fmt: skip


def _player_games_before(box: pd.DataFrame, player: int, d: date) -> pd.DataFrame:
    g = box[(box.PLAYER_ID == player) & (box.GAME_DATE < str(d))]
    return g.sort_values(["GAME_DATE", "GAME_ID"])


def _traded_player(box: pd.DataFrame) -> tuple[int, date]:
    """A player with ≥ 10 games for one team, then games for another: (id, a date he plays
    for the new team after ≥ 3 games there)."""
    for player, g in box.sort_values("GAME_DATE").groupby("PLAYER_ID"):
        teams = list(dict.fromkeys(g.TEAM_ID))
        if len(teams) == 2 and (g.TEAM_ID == teams[0]).sum() >= 10 and (g.TEAM_ID == teams[1]).sum() >= 5:
            new = g[g.TEAM_ID == teams[1]]
            return int(player), date.fromisoformat(new.GAME_DATE.iloc[3])
    raise AssertionError("no traded player in the season")


# ---------------------------------------------------------------- windows


@pytest.mark.parametrize("d", [date(2023, 11, 20), date(2024, 1, 15), date(2024, 4, 14)])
def test_daily_cache_windows_equal_pandas_over_the_box_scores(season_csv, summary, d):
    box = season_csv["player_box"]
    cache = pc.player_daily_cache(summary, _offense(season_csv), _today(box, d), d).set_index("player_id")
    today = _today(box, d)
    for player in today.player_id:
        g = _player_games_before(box, player, d)
        if len(g) < 3:
            assert player not in cache.index  # the 3-game minimum
            continue
        row = cache.loc[player]
        assert row.games_played_season == len(g)
        assert row.points_avg_season == pytest.approx(g.PTS.mean())
        assert row.points_avg_last_5 == pytest.approx(g.PTS.tail(5).mean())
        assert row.points_avg_last_10 == pytest.approx(g.PTS.tail(10).mean())
        assert row.points_std_last_10 == pytest.approx(g.PTS.tail(10).std(ddof=1))
        assert row.minutes_avg_last_10 == pytest.approx(g.MIN.tail(10).mean())
        last10 = g.tail(10)
        assert row.ts_pct_last_10 == pytest.approx(
            last10.PTS.sum() / (2 * (last10.FGA.sum() + 0.44 * last10.FTA.sum())), nan_ok=True
        )


def test_a_traded_players_windows_span_both_teams_and_team_form_is_the_new_teams(season_csv, summary):
    box = season_csv["player_box"]
    player, d = _traded_player(box)
    offense = _offense(season_csv)
    row = pc.player_daily_cache(summary, offense, _today(box, d), d).set_index("player_id").loc[player]
    g = _player_games_before(box, player, d)
    assert g.TEAM_ID.nunique() == 2  # his last 10 include games for his old team
    assert row.points_avg_last_10 == pytest.approx(g.PTS.tail(10).mean())
    new_team = int(_today(box, d).set_index("player_id").team_id[player])
    assert row.team_id == new_team
    team_games = offense[(offense.team_id == new_team) & (offense.game_date < d)].sort_values("game_date")
    assert row.team_pace_last_10 == pytest.approx(team_games.pace.tail(10).mean())
    assert row.team_win_pct_season == pytest.approx(team_games.win.mean())


def test_first_games_first_row_then_the_cache_from_the_fourth(season_csv, summary):
    box = season_csv["player_box"]
    # A player whose season starts late: his first, second and fourth games.
    late = box.groupby("PLAYER_ID").GAME_DATE.min()
    player = int(late[late > "2023-12-01"].index[0])
    dates = sorted(box[box.PLAYER_ID == player].GAME_DATE)
    first, second, fourth = (date.fromisoformat(dates[i]) for i in (0, 1, 3))
    offense = _offense(season_csv)
    zones_first = pc.player_shot_zone_analysis(summary, _today(box, first), first)
    assert player not in set(zones_first.player_id)  # no earlier game: nothing to describe
    zones_second = pc.player_shot_zone_analysis(summary, _today(box, second), second).set_index("player_id")
    assert zones_second.loc[player, "games_last_10"] == 1
    assert zones_second.loc[player, "sample_quality"] == "low"
    assert player not in set(pc.player_daily_cache(summary, offense, _today(box, second), second).player_id)
    cache = pc.player_daily_cache(summary, offense, _today(box, fourth), fourth).set_index("player_id")
    assert cache.loc[player, "games_played_season"] == 3


@pytest.mark.parametrize("d", [date(2023, 12, 1), date(2024, 3, 1)])
def test_shot_zone_rates_equal_pandas_over_the_shot_chart(season_csv, summary, d):
    box, shots = season_csv["player_box"], season_csv["shots"]
    zones = pc.player_shot_zone_analysis(summary, _today(box, d), d).set_index("player_id")
    checked = 0
    for player in _today(box, d).player_id:
        games = _player_games_before(box, player, d)
        if games.empty:
            continue
        for n in (10, 20):
            ids = set(games.GAME_ID.tail(n))
            s = shots[(shots.PLAYER_ID == player) & shots.GAME_ID.isin(ids)]
            three = s.SHOT_TYPE.str.startswith("3")
            paint = ~three & s.BASIC_ZONE.isin(PAINT)
            row = zones.loc[player]
            assert row[f"games_last_{n}"] == len(ids)
            if len(s):
                assert row[f"three_rate_last_{n}"] == pytest.approx(three.mean())
                assert row[f"paint_rate_last_{n}"] == pytest.approx(paint.mean())
            if three.sum():
                assert row[f"three_fg_pct_last_{n}"] == pytest.approx(s.SHOT_MADE[three].mean())
        checked += 1
    assert checked > 100


def test_team_defense_zones_against_pandas(season_csv, summary):
    d = date(2024, 1, 15)
    box, shots = season_csv["player_box"], season_csv["shots"]
    # Defence rows from the CSVs: what each team's opponents shot, by zone.
    s = shots.assign(three=shots.SHOT_TYPE.str.startswith("3"))
    team_of_game = box[["GAME_ID", "TEAM_ID", "OPP_TEAM_ID"]].drop_duplicates()
    s = s.merge(team_of_game, on=["GAME_ID", "TEAM_ID"])  # the shooter's team → its opponent defends
    per = s.groupby(["GAME_ID", "GAME_DATE", "OPP_TEAM_ID"]).agg(
        opp_three_attempts=("three", "sum"),
        opp_three_makes=("SHOT_MADE", lambda m: m[s.loc[m.index, "three"]].sum()),
    ).reset_index()
    defense = pd.DataFrame({
        "game_id": per.GAME_ID, "game_date": pd.to_datetime(per.GAME_DATE).dt.date, "team_id": per.OPP_TEAM_ID,
        "opp_three_attempts": per.opp_three_attempts, "opp_three_makes": per.opp_three_makes,
        **{f"opp_{z}_{k}": 0 for z in ("paint", "mid_range") for k in ("attempts", "makes")},
        "defensive_rating": 100.0, "opponent_pace": 100.0,
    })  # fmt: skip
    teams_today = _today(box, d)[["team_id"]].drop_duplicates()
    out = pc.team_defense_zone_analysis(defense, teams_today, d).set_index("team_id")
    before = defense[defense.game_date < d].sort_values(["game_date", "game_id"])
    league = before[before.game_date >= date(2023, 12, 16)]  # the 30 days before
    league_pct = league.opp_three_makes.sum() / league.opp_three_attempts.sum()
    for team in teams_today.team_id:
        last15 = before[before.team_id == team].tail(15)
        pct = last15.opp_three_makes.sum() / last15.opp_three_attempts.sum()
        assert out.loc[team, "games_in_window"] == 15
        assert out.loc[team, "three_fg_pct_allowed"] == pytest.approx(pct)
        assert out.loc[team, "league_three_fg_pct"] == pytest.approx(league_pct)
        assert out.loc[team, "three_vs_league"] == pytest.approx(pct - league_pct)


# ---------------------------------------------------------------- guards


def _feature_inputs(season_csv, summary, d):
    box = season_csv["player_box"]
    today, offense = _today(box, d), _offense(season_csv)
    cache = pc.player_daily_cache(summary, offense, today, d)
    zones = pc.player_shot_zone_analysis(summary, today, d)
    context = today[["player_id"]].assign(days_rest=1, back_to_back=False, games_last_7_days=2,
                                          minutes_last_7_days=60.0, back_to_backs_last_14_days=0)  # fmt: skip
    defense = pd.DataFrame(columns=["team_id", "defensive_rating_last_15", "opponent_pace_last_15",
                                    *(f"{z}_vs_league" for z in ("paint", "mid_range", "three"))])  # fmt: skip
    composite = pc.player_composite_factors(cache, zones, defense, context, pc.team_form(offense, d).pace_last_10,
                                            pc.league_pace(offense, d), today, d)
    return today, cache, zones, composite, defense, context


def test_a_feature_out_of_its_range_fails_and_a_defaulted_one_is_reported(season_csv, summary):
    d = date(2024, 1, 15)
    today, cache, zones, composite, defense, context = _feature_inputs(season_csv, summary, d)
    rows, warnings = pc.ml_feature_rows(today, cache, zones, composite, defense, context, d)
    assert len(rows) == len(today.player_id.unique())
    # No opponent defence rows at all: those features are defaulted for everyone, reported.
    assert "opp_defensive_rating_last_15: defaulted for all" in " ".join(warnings)
    assert (rows.opp_defensive_rating_last_15_source == "default").all()
    assert (rows.points_avg_last_10_source == "player_daily_cache").sum() == len(cache)
    assert rows.actual_points.tolist() == today.drop_duplicates("player_id").pts.tolist()

    # An impossible value (a negative average) fails the date; an unusual one (an average of
    # 500 points: possible by the rules) is a warning that names the usual band.
    broken = cache.assign(points_avg_last_5=-cache.points_avg_last_5 - 1)
    with pytest.raises(pc.FeatureRangeError, match="points_avg_last_5 outside its possible \\[0, inf\\]"):
        pc.ml_feature_rows(today, broken, zones, composite, defense, context, d)
    unusual = cache.assign(points_avg_last_5=cache.points_avg_last_5 + 500)
    rows, warnings = pc.ml_feature_rows(today, unusual, zones, composite, defense, context, d)
    assert any(w.startswith("points_avg_last_5: outside the usual [0, 80] for") for w in warnings), warnings
    rates = zones.assign(paint_rate_last_10=1.5)  # a share above 1: impossible, no usual band
    with pytest.raises(pc.FeatureRangeError, match="paint_rate_last_10 outside its possible \\[0, 1\\]"):
        pc.ml_feature_rows(today, cache, rates, composite, defense, context, d)


def test_a_constant_feature_is_reported(season_csv, summary):
    d = date(2024, 1, 15)
    today, cache, zones, composite, defense, context = _feature_inputs(season_csv, summary, d)
    flat = composite.assign(fatigue_score=7.0)
    _, warnings = pc.ml_feature_rows(today, cache, zones, flat, defense, context, d)
    assert any(w.startswith("fatigue_score: constant") for w in warnings)


def test_the_look_ahead_guard_windows_ignore_later_rows(season_csv, summary):
    d = date(2024, 1, 15)
    box, offense = season_csv["player_box"], _offense(season_csv)
    until = summary[summary.game_date < d]
    a = pc.player_daily_cache(summary, offense, _today(box, d), d)
    b = pc.player_daily_cache(until, offense[offense.game_date < d], _today(box, d), d)
    pd.testing.assert_frame_equal(a, b)


# ---------------------------------------------------------------- on the warehouse


@pytest.fixture
def home_copy(built_home, tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(built_home / "warehouse.duckdb", home / "warehouse.duckdb")
    monkeypatch.setenv("HOOPFLOW_HOME", str(home))
    reset_settings()
    yield get_settings().warehouse_block()
    reset_settings()


def _forget(wh, processors, since: date = date.min) -> None:
    """Delete the processors' partitions from `since` on, and their run-ledger rows: for the
    engine those dates were never run."""
    for p in processors:
        wh.query(f"DELETE FROM {p.table.id} WHERE game_date >= @d", {"d": since})
        wh.query("DELETE FROM nba_ops.run_ledger WHERE processor = @p AND game_date >= @d", {"p": p.name, "d": since})


def test_bootstrap_no_rows_in_the_first_14_days_then_every_date(home_copy, season_csv):
    dates = sorted({date.fromisoformat(d) for d in season_csv["schedule"].GAME_DATE
                    if str(BUILT_START) <= d <= str(BUILT_END)})  # fmt: skip
    _forget(home_copy, pc.PRECOMPUTE.processors)  # precompute the four weeks again, from nothing
    assert set(statuses_of(pc.PRECOMPUTE, PHASES, dates).values()) == {"missing"}
    result = run_phase_directly(pc.PRECOMPUTE, PHASES, dates)
    first_day = date.fromisoformat(season_csv["schedule"].GAME_DATE.min())
    expected = [d for d in dates if (d - first_day).days >= 14]
    # The 15th day of the season is 2023-11-07, a day without games: the first rows are the 8th.
    assert expected[0] == date(2023, 11, 8) and str(date(2023, 11, 7)) not in set(season_csv["schedule"].GAME_DATE)
    assert result.failed == {}
    assert result.dates == result.ran == expected  # the bootstrap days are not even planned
    for spec in pc.PRECOMPUTE_TABLES:
        got = home_copy.query(f"SELECT DISTINCT game_date FROM {spec.id} ORDER BY 1")
        assert list(pd.to_datetime(got.game_date).dt.date) == expected, spec.name
    players = season_csv["player_box"]
    in_range = players[players.GAME_DATE.between(str(expected[0]), str(BUILT_END))]
    assert int(home_copy.query("SELECT count(*) AS n FROM nba_precompute.ml_feature_store").n[0]) == len(in_range)
    assert result.rows["ml_feature_store"] == len(in_range)
    # A bootstrap day: nothing to run, nothing written, not even a ledger row.
    bootstrap = [d for d in dates if d < expected[0]]
    assert len(bootstrap) == 14
    assert run_phase_directly(pc.PRECOMPUTE, PHASES, bootstrap).rows == {}
    assert run_directly(["precompute"], bootstrap) == {}
    ledger = home_copy.query("SELECT processor, game_date FROM nba_ops.run_ledger")
    ledger = ledger[ledger.processor.isin([p.name for p in pc.PRECOMPUTE.processors])]
    assert sorted(set(pd.to_datetime(ledger.game_date).dt.date)) == expected
    assert set(statuses_of(pc.PRECOMPUTE, PHASES, expected).values()) == {"current"}


def test_features_of_a_date_do_not_change_when_later_data_is_removed(home_copy, built_home, tmp_path):
    d = date(2023, 11, 15)
    assert statuses_of(pc.PRECOMPUTE, PHASES, [d]) == {d: "current"}
    with_future = home_copy.query("SELECT * FROM nba_precompute.ml_feature_store WHERE game_date = @d", {"d": d})
    assert len(with_future) > 0
    # Every table from the date on, with its ledger rows: for the engine, never loaded.
    _forget(home_copy, [p for phase in PHASES for p in phase.processors], since=d)
    for spec in ("nba_raw.schedule", "nba_raw.player_boxscores", "nba_raw.shots",
                 "nba_analytics.team_offense_game_summary", "nba_analytics.team_defense_game_summary",
                 "nba_analytics.player_game_summary", "nba_analytics.player_game_context",
                 *(s.id for s in pc.PRECOMPUTE_TABLES)):  # fmt: skip
        assert int(home_copy.query(f"SELECT count(*) AS n FROM {spec} WHERE game_date >= @d", {"d": d}).n[0]) == 0
    # Only the date itself is reloaded: who plays, the context, the target.
    rows = run_directly(["raw", "analytics", "precompute"], [d])
    assert rows["ml_feature_store"] == len(with_future)  # really recomputed, not skipped
    without = home_copy.query("SELECT * FROM nba_precompute.ml_feature_store WHERE game_date = @d", {"d": d})
    key = ["player_id"]
    pd.testing.assert_frame_equal(
        with_future.sort_values(key).reset_index(drop=True), without.sort_values(key).reset_index(drop=True)
    )


def test_the_season_start_comes_from_the_schedule_for_any_season(tmp_path, monkeypatch):
    # The season's last two weeks as a season of their own: its first 14 days are bootstrap.
    folder = tmp_path / "source" / "1999-00"
    folder.mkdir(parents=True)
    for name in ("schedule", "player_box", "shots"):
        df = pd.read_csv(SEASON_DIR / f"{name}.csv.gz", dtype=str, keep_default_na=False)
        df[df.GAME_DATE >= "2024-04-01"].to_csv(folder / f"{name}.csv.gz", index=False)
    monkeypatch.setenv("HOOPFLOW_SOURCE_DIR", str(folder.parent))
    reset_settings()
    try:
        dates = get_settings().source_block().game_dates(date.min, date.max)
        assert pc.precompute_processable(dates) == [d for d in dates if d >= date(2024, 4, 15)] == []
        assert get_settings().source_block().season_start(date(2024, 4, 10)) == date(2024, 4, 1)
    finally:
        reset_settings()


# ---------------------------------------------------------------- a season boundary

OLD_SEASON = ["2023-10-24", "2023-10-25", "2023-10-26", "2023-10-27"]
NEW_START, NEW_END = "2024-01-01", "2024-01-15"  # the first date past its bootstrap: 01-15


@pytest.fixture(scope="module")
def two_seasons(tmp_path_factory):
    """A source with two season folders: the bundled season's first four dates as 2023-24,
    and 2024-01-01 → 01-15 re-labelled as a season of its own (2024-25), built through every
    phase without Prefect. Its players played in the first folder too."""
    root = tmp_path_factory.mktemp("two_seasons")
    frames = {}
    for name in ("schedule", "player_box", "shots"):
        df = pd.read_csv(SEASON_DIR / f"{name}.csv.gz", dtype=str, keep_default_na=False)
        old = df[df.GAME_DATE.isin(OLD_SEASON)]
        new = df[df.GAME_DATE.between(NEW_START, NEW_END)].copy()
        if "SEASON" in new.columns:
            new["SEASON"] = "2024-25"
        if "SEASON_ID" in new.columns:
            new["SEASON_ID"] = "22024"
        for season, part in (("2023-24", old), ("2024-25", new)):
            (root / "source" / season).mkdir(parents=True, exist_ok=True)
            part.to_csv(root / "source" / season / f"{name}.csv.gz", index=False)
        frames[name] = pd.concat([old.assign(folder="2023-24"), new.assign(folder="2024-25")])
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOOPFLOW_SOURCE_DIR", str(root / "source"))
        mp.setenv("HOOPFLOW_HOME", str(root / "home"))
        reset_settings()
        dates = get_settings().source_block().game_dates(date.min, date.max)
        run_directly(["raw", "reconcile", "analytics", "precompute"], dates)
        get_settings().warehouse_block().query("CHECKPOINT")  # everything in the file: a test copies it
        yield get_settings(), frames, root
    reset_settings()


def test_a_new_seasons_windows_see_nothing_of_the_previous_season(two_seasons):
    settings, csv, _ = two_seasons
    wh = settings.warehouse_block()
    box = csv["player_box"].assign(PLAYER_ID=lambda b: b.PLAYER_ID.astype(int))
    new_box = box[box.folder == "2024-25"]
    first_new = date.fromisoformat(NEW_START)
    assert settings.source_block().season_start(date(2024, 1, 10)) == first_new
    returning = set(new_box.PLAYER_ID[new_box.GAME_DATE == NEW_START]) & set(box.PLAYER_ID[box.folder == "2023-24"])
    assert len(returning) > 50  # most of the new season's first players played in the old one

    # player_game_context: on the new season's first date nobody has played yet this season.
    ctx = wh.query("SELECT * FROM nba_analytics.player_game_context")
    ctx = ctx.assign(game_date=pd.to_datetime(ctx.game_date).dt.strftime("%Y-%m-%d"))
    first = ctx[ctx.game_date == NEW_START]
    assert len(first) == (new_box.GAME_DATE == NEW_START).sum()
    assert set(first.season) == {"2024-25"}
    assert (first.games_played_season == 0).all() and first.days_rest.isna().all()
    assert (first.games_last_14_days == 0).all() and not first.back_to_back.any()
    # Every context row of the new season counts the new season's earlier games only.
    new_ctx = ctx[ctx.season == "2024-25"].set_index(["game_date", "player_id"])
    assert len(new_ctx) == len(new_box)
    for (d, pid), g in new_box.groupby(["GAME_DATE", "PLAYER_ID"]):
        before = new_box[(new_box.PLAYER_ID == pid) & (new_box.GAME_DATE < d)]
        assert new_ctx.loc[(d, pid), "games_played_season"] == len(before), (d, pid)
        if len(before) == 0:
            assert pd.isna(new_ctx.loc[(d, pid), "days_rest"]), (d, pid)
        else:
            gap = (date.fromisoformat(d) - date.fromisoformat(before.GAME_DATE.max())).days - 1
            assert new_ctx.loc[(d, pid), "days_rest"] == gap, (d, pid)

    # precompute: only 01-15 is past the new season's bootstrap; its windows start 01-01.
    d = date(2024, 1, 15)
    cached = wh.query("SELECT DISTINCT game_date FROM nba_precompute.player_daily_cache")
    assert list(pd.to_datetime(cached.game_date).dt.date) == [d]
    cache = wh.query("SELECT * FROM nba_precompute.player_daily_cache").set_index("player_id")
    assert set(cache.season) == {"2024-25"}
    today = new_box[new_box.GAME_DATE == str(d)]
    with_old_games = 0
    for pid in today.PLAYER_ID:
        g = new_box[(new_box.PLAYER_ID == pid) & (new_box.GAME_DATE < str(d))]
        old = box[(box.PLAYER_ID == pid) & (box.folder == "2023-24")]
        if len(g) < 3:
            assert pid not in cache.index  # his old season's games do not count towards the 3
            continue
        with_old_games += len(old) > 0
        assert cache.loc[pid, "games_played_season"] == len(g)
        assert cache.loc[pid, "points_avg_season"] == pytest.approx(g.PTS.astype(int).mean())
        assert cache.loc[pid, "points_avg_last_10"] == pytest.approx(g.PTS.astype(int).tail(10).mean())
    assert with_old_games > 50
    # Team windows too: a team's zone defence counts its games of the new season only.
    zones = wh.query("SELECT team_id, games_in_window FROM nba_precompute.team_defense_zone_analysis")
    sched = csv["schedule"][csv["schedule"].folder == "2024-25"]
    sched = sched[sched.GAME_DATE < str(d)]
    for team, n in zip(zones.team_id, zones.games_in_window, strict=True):
        played = ((sched.HOME_TEAM_ID.astype(int) == team) | (sched.AWAY_TEAM_ID.astype(int) == team)).sum()
        assert n == min(played, pc.DEFENSE_WINDOW), team


def test_a_corrected_date_of_the_old_season_recomputes_nothing_of_the_new_one(two_seasons, tmp_path, monkeypatch):
    settings, _, root = two_seasons
    # Work on a copy of the built warehouse and source: the module's fixture stays as built.
    shutil.copytree(root / "source", tmp_path / "source")
    (tmp_path / "home").mkdir()
    shutil.copy(root / "home" / "warehouse.duckdb", tmp_path / "home" / "warehouse.duckdb")
    monkeypatch.setenv("HOOPFLOW_SOURCE_DIR", str(tmp_path / "source"))
    monkeypatch.setenv("HOOPFLOW_HOME", str(tmp_path / "home"))
    reset_settings()
    dates = get_settings().source_block().game_dates(date.min, date.max)
    old = [d for d in dates if d.isoformat() in OLD_SEASON]
    new = [d for d in dates if d not in old]
    for phase in PHASES:
        assert set(statuses_of(phase, PHASES, phase.processable(dates)).values()) == {"current"}, phase.name

    path = tmp_path / "source" / "2023-24" / "player_box.csv.gz"
    box = pd.read_csv(path, dtype=str, keep_default_na=False)
    row = box.index[box.GAME_DATE == OLD_SEASON[0]][0]
    box.loc[row, "MIN"] = str(int(box.loc[row, "MIN"]) + 1)
    box.to_csv(path, index=False)
    assert statuses_of(RAW, PHASES, dates) == {d: "stale" if d == old[0] else "current" for d in dates}
    run_directly(["raw"], dates)
    # The old season's dates read 10-24 (that date, and the later contexts); the new season's
    # windows start on 2024-01-01.
    assert statuses_of(ANALYTICS, PHASES, dates) == {d: "stale" if d in old else "current" for d in dates}
    plan = plan_phase(ANALYTICS, dates, PHASES)
    assert {plan.dates[d].season for d in old} == {"2023-24"} and {plan.dates[d].season for d in new} == {"2024-25"}
    assert statuses_of(PHASE["precompute"], PHASES, pc.precompute_processable(dates)) == {date(2024, 1, 15): "current"}
    reset_settings()
