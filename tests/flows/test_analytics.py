"""The analytics phase end to end through a real Prefect API and a DuckDB file; identities
are checked with independent queries over the warehouse for every row of the range."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from prefect.settings import PREFECT_TASKS_REFRESH_CACHE, temporary_settings

from blocks.settings import get_settings, reset_settings
from engine.runner import PhaseFailed, PhaseResult, statuses_of
from flows.analytics import analytics
from flows.backfill import backfill
from flows.raw import raw
from tasks.analytics import ANALYTICS
from tasks.phases import PHASES
from tasks.raw import RAW
from tests.conftest import SEASON_DIR

pytestmark = pytest.mark.e2e

START, END = date(2023, 10, 24), date(2023, 11, 5)


def _scalar(wh, sql: str) -> int:
    return int(wh.query(sql).iloc[0, 0])


def test_backfill_raw_then_analytics_holds_every_identity(prefect_api, hoopflow_home, season_csv):
    assert backfill(START, END, ["raw", "analytics"], return_state=True).is_completed()
    wh = get_settings().warehouse_block()

    in_range = season_csv["player_box"].GAME_DATE.between(str(START), str(END))
    assert _scalar(wh, "SELECT count(*) FROM nba_analytics.player_game_summary") == in_range.sum()
    assert _scalar(wh, "SELECT count(*) FROM nba_analytics.player_game_context") == in_range.sum()
    games = season_csv["schedule"].GAME_DATE.between(str(START), str(END)).sum()
    assert _scalar(wh, "SELECT count(*) FROM nba_analytics.team_offense_game_summary") == 2 * games
    assert _scalar(wh, "SELECT count(*) FROM nba_analytics.team_defense_game_summary") == 2 * games

    # Σ player points = team points = the schedule's final score, for every team-game.
    assert _scalar(wh, """
        SELECT count(*) FROM nba_analytics.team_offense_game_summary t
        JOIN (SELECT game_id, team_id, sum(pts) AS pts FROM nba_analytics.player_game_summary
              GROUP BY 1, 2) p USING (game_id, team_id)
        JOIN nba_raw.schedule s USING (game_id)
        WHERE t.points <> p.pts
           OR t.points <> CASE WHEN t.home THEN s.home_pts ELSE s.away_pts END""") == 0
    # Zones add up to FGA wherever the shot chart agrees with the box score.
    assert _scalar(wh, """
        SELECT count(*) FROM nba_analytics.player_game_summary WHERE has_complete_shot_zones
          AND paint_attempts + mid_range_attempts + three_attempts <> fga""") == 0
    assert _scalar(wh, "SELECT count(*) FROM nba_analytics.player_game_summary WHERE usage_rate > 100") == 0
    assert _scalar(wh, "SELECT count(*) FROM nba_analytics.player_game_summary WHERE minutes IS NULL") == 0
    # Win flags agree with the raw box score's W/L.
    assert _scalar(wh, """
        SELECT count(*) FROM nba_analytics.player_game_summary p
        JOIN nba_raw.player_boxscores b USING (game_id, player_id)
        WHERE p.win <> (b.wl = 'W')""") == 0
    # The context of a season's first game has no rest value; later ones do.
    assert _scalar(wh, """
        SELECT count(*) FROM nba_analytics.player_game_context
        WHERE (games_played_season = 0) <> (days_rest IS NULL)""") == 0

    # Rerunning a date with the cache bypassed replaces its rows: no duplicates.
    before = _scalar(wh, "SELECT count(*) FROM nba_analytics.player_game_summary")
    nov1 = date(2023, 11, 1)
    assert analytics(nov1).ran == []  # current: nothing to do
    with temporary_settings({PREFECT_TASKS_REFRESH_CACHE: True}):
        result = analytics(nov1, reprocess="all")
    assert isinstance(result, PhaseResult) and result.ran == [nov1] and result.failed == {}
    assert result.rows["player_game_summary"] == (season_csv["player_box"].GAME_DATE == str(nov1)).sum()
    assert _scalar(wh, "SELECT count(*) FROM nba_analytics.player_game_summary") == before
    assert _scalar(wh, """
        SELECT count(*) FROM (SELECT game_id, player_id FROM nba_analytics.player_game_summary
                              GROUP BY 1, 2 HAVING count(*) > 1)""") == 0


def test_a_date_without_raw_fails_clearly_and_writes_nothing(prefect_api, hoopflow_home):
    state = analytics(date(2023, 11, 1), return_state=True)
    assert state.is_failed()
    message = ("analytics: 1 of 1 dates failed: 2023-11-01: team_offense_game_summary for 2023-11-01 "
               "needs nba_raw.schedule for 2023-11-01; 1 missing: 2023-11-01")
    assert state.message.endswith(f"PhaseFailed: {message}")
    failure = state.result(raise_on_failure=False)
    assert isinstance(failure, PhaseFailed) and str(failure) == message
    assert list(failure.result.failed) == [date(2023, 11, 1)]
    wh = get_settings().warehouse_block()
    for spec in ANALYTICS.tables:
        assert not wh.has_table(spec) or _scalar(wh, f"SELECT count(*) FROM {spec.id}") == 0, spec.id


def test_a_range_with_one_bad_date_writes_the_others_and_fails_naming_it(
    prefect_api, hoopflow_home, season_csv, monkeypatch, tmp_path
):
    dates = ["2023-11-01", "2023-11-02", "2023-11-03", "2023-11-04"]
    folder = tmp_path / "source" / "2023-24"
    folder.mkdir(parents=True)
    for name in ("schedule", "player_box", "shots"):
        df = pd.read_csv(SEASON_DIR / f"{name}.csv.gz", dtype=str, keep_default_na=False)
        df[df.GAME_DATE.isin(dates)].to_csv(folder / f"{name}.csv.gz", index=False)
    monkeypatch.setenv("HOOPFLOW_SOURCE_DIR", str(folder.parent))
    reset_settings()
    first, last, bad = date(2023, 11, 1), date(2023, 11, 4), date(2023, 11, 3)
    # The phase flows on their own (no backfill to create the tables first): raw, then analytics.
    assert raw(first, last, return_state=True).is_completed()
    wh = get_settings().warehouse_block()
    # The date's shot chart goes missing from the warehouse behind the engine's back (the
    # ledger still says it is loaded): the plan sees the partition gone, so analytics fails
    # that date naming what is missing, never writes zeros, and writes every other date (the
    # later dates' season windows read box scores, not shots).
    wh.query("DELETE FROM nba_raw.shots WHERE game_date = @d", {"d": bad})

    state = analytics(first, last, return_state=True)
    assert state.is_failed()
    failure = state.result(raise_on_failure=False)
    assert isinstance(failure, PhaseFailed)
    result = failure.result
    days = [date.fromisoformat(d) for d in dates]
    assert result.dates == result.ran == days
    assert list(result.failed) == [bad]
    # The first missing input of the date, named with its table and the command's phase.
    assert result.failed[bad] == ("team_offense_game_summary for 2023-11-03 needs nba_raw.shots for 2023-11-03; "
                                  "1 missing: 2023-11-03")
    assert str(failure) == f"analytics: 1 of 4 dates failed: 2023-11-03: {result.failed[bad]}"
    assert state.message.endswith(f"PhaseFailed: {failure}")

    box = season_csv["player_box"]
    games = season_csv["schedule"].groupby("GAME_DATE").size()
    for table, expected in (("player_game_summary", box.groupby("GAME_DATE").size()),
                            ("player_game_context", box.groupby("GAME_DATE").size()),
                            ("team_offense_game_summary", 2 * games), ("team_defense_game_summary", 2 * games)):  # fmt: skip
        got = wh.query(f"SELECT game_date, count(*) AS n FROM nba_analytics.{table} GROUP BY 1")
        got = dict(zip(pd.to_datetime(got.game_date).dt.strftime("%Y-%m-%d"), got.n, strict=True))
        assert got == {d: expected[d] for d in dates if d != str(bad)}, table
    ledger = wh.query("SELECT processor, status FROM nba_ops.run_ledger WHERE game_date = @d", {"d": bad})
    assert not ledger.processor.isin([p.name for p in ANALYTICS.processors]).any()  # nothing ran on it
    statuses = statuses_of(ANALYTICS, PHASES, days)
    assert statuses[bad] == "missing" and {statuses[d] for d in days if d != bad} == {"current"}  # its input is gone


def test_a_changed_raw_date_recomputes_that_date_and_later_contexts(
    prefect_api, hoopflow_home, tmp_path, monkeypatch
):
    dates = ["2023-11-01", "2023-11-02", "2023-11-03"]
    folder = tmp_path / "source" / "2023-24"
    folder.mkdir(parents=True)
    for name in ("schedule", "player_box", "shots"):
        df = pd.read_csv(SEASON_DIR / f"{name}.csv.gz", dtype=str, keep_default_na=False)
        df[df.GAME_DATE.isin(dates)].to_csv(folder / f"{name}.csv.gz", index=False)
    monkeypatch.setenv("HOOPFLOW_SOURCE_DIR", str(folder.parent))
    reset_settings()
    first, last = date(2023, 11, 1), date(2023, 11, 3)
    assert backfill(first, last, ["raw", "analytics"], return_state=True).is_completed()
    wh = get_settings().warehouse_block()
    seen = _scalar(wh, "SELECT count(*) FROM nba_ops.run_ledger")
    days = [date.fromisoformat(d) for d in dates]
    everything_current = dict.fromkeys(days, "current")
    assert statuses_of(RAW, PHASES, days) == statuses_of(ANALYTICS, PHASES, days) == everything_current

    # A corrected box score on the first date: a player's minutes (enters later contexts).
    box = pd.read_csv(folder / "player_box.csv.gz", dtype=str, keep_default_na=False)
    row = box.index[box.GAME_DATE == "2023-11-01"][0]
    box.loc[row, "MIN"] = str(int(box.loc[row, "MIN"]) + 1)
    box.to_csv(folder / "player_box.csv.gz", index=False)
    # The plan sees it before anything runs: only raw of 11-01 is stale (analytics reads what
    # raw wrote, which has not changed yet). Once raw is reloaded, analytics of 11-01 is stale,
    # and so are the later dates (their context window holds 11-01).
    assert statuses_of(RAW, PHASES, days) == {**everything_current, first: "stale"}
    assert statuses_of(ANALYTICS, PHASES, days) == everything_current
    state = backfill(first, last, ["raw"], return_state=True)
    assert state.is_completed()
    assert statuses_of(ANALYTICS, PHASES, days) == dict.fromkeys(days, "stale")
    assert backfill(first, last, ["raw", "analytics"], return_state=True).is_completed()
    assert statuses_of(RAW, PHASES, days) == statuses_of(ANALYTICS, PHASES, days) == everything_current

    new = wh.query("SELECT processor, game_date FROM nba_ops.run_ledger").iloc[seen:]
    reran = sorted(zip(new.processor, new.game_date.astype(str), strict=True))
    assert reran == sorted(
        [
            ("player_boxscores", "2023-11-01"),  # the schedule and shots of 11-01 did not change
            ("team_offense_game_summary", "2023-11-01"),
            ("team_defense_game_summary", "2023-11-01"),
            ("player_game_summary", "2023-11-01"),
            ("player_game_context", "2023-11-01"),
            # later dates read 11-01 through their season-to-date window
            ("player_game_context", "2023-11-02"),
            ("player_game_context", "2023-11-03"),
        ]
    )
