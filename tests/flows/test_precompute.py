"""The precompute phase end to end: a gated backfill through raw, analytics and precompute
(real temporary Prefect API, DuckDB file) over a season's first 16 days."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from blocks.settings import get_settings
from engine.runner import PhaseFailed, PhaseResult, statuses_of
from flows.backfill import backfill
from flows.precompute import precompute
from tasks.phases import PHASES
from tasks.precompute import PRECOMPUTE
from tests.conftest import copy_season, use_source

pytestmark = pytest.mark.e2e


def test_backfill_through_precompute_skips_bootstrap_and_validates(
    prefect_api, hoopflow_home, tmp_path, monkeypatch, season_csv
):
    sched = season_csv["schedule"]
    dates = sorted(d for d in set(sched.GAME_DATE) if d <= "2023-11-09")
    use_source(monkeypatch, copy_season(tmp_path, dates))
    state = backfill(date(2023, 10, 24), date(2023, 11, 9), return_state=True)
    assert state.is_completed(), state.message
    report = state.result()
    pre = next(r for r in report.results if r.phase == "precompute")
    assert [str(d) for d in pre.ran] == ["2023-11-08", "2023-11-09"]  # after the first 14 days
    assert pre.validation.status == "passed"
    assert "bootstrap_exclusion" in {c.name for c in pre.validation.results}

    wh = get_settings().warehouse_block()
    got = wh.query("SELECT game_date, count(*) AS n FROM nba_precompute.ml_feature_store GROUP BY 1 ORDER BY 1")
    box = season_csv["player_box"]
    expected = box[box.GAME_DATE.isin(["2023-11-08", "2023-11-09"])].groupby("GAME_DATE").size()
    assert list(pd.to_datetime(got.game_date).dt.strftime("%Y-%m-%d")) == list(expected.index)
    assert list(got.n) == list(expected)

    # A bootstrap date is a clean no-op; a rerun of a current date writes nothing new.
    ledger = len(wh.query("SELECT * FROM nba_ops.run_ledger"))
    noop = precompute(date(2023, 10, 30))
    assert isinstance(noop, PhaseResult)
    assert (noop.dates, noop.ran, noop.failed, noop.rows) == ([], [], {}, {})
    assert precompute(date(2023, 10, 24), date(2023, 11, 7)).rows == {}  # the whole bootstrap
    assert len(wh.query("SELECT * FROM nba_ops.run_ledger")) == ledger
    assert statuses_of(PRECOMPUTE, PHASES, [date(2023, 11, 8), date(2023, 11, 9)]) == {
        date(2023, 11, 8): "current", date(2023, 11, 9): "current"}  # fmt: skip
    current = precompute(date(2023, 10, 24), date(2023, 11, 9))
    assert (current.ran, current.skipped, current.rows) == ([], [date(2023, 11, 8), date(2023, 11, 9)], {})
    assert backfill(date(2023, 10, 24), date(2023, 11, 9), return_state=True).is_completed()
    assert len(wh.query("SELECT * FROM nba_ops.run_ledger")) == ledger


def test_precompute_without_analytics_fails_clearly(prefect_api, hoopflow_home, tmp_path, monkeypatch, season_csv):
    dates = sorted(d for d in set(season_csv["schedule"].GAME_DATE) if d <= "2023-11-09")
    use_source(monkeypatch, copy_season(tmp_path, dates))
    assert backfill(date(2023, 10, 24), date(2023, 11, 9), ["raw"], return_state=True).is_completed()
    state = precompute(date(2023, 11, 8), return_state=True)
    assert state.is_failed()
    # Its first processor needs the season's team defence through the date: every game date.
    season = [d for d in dates if d <= "2023-11-08"]
    message = (f"precompute: 1 of 1 dates failed: 2023-11-08: team_defense_zone_analysis for 2023-11-08 needs "
               f"nba_analytics.team_defense_game_summary for every game date of its season up to 2023-11-08; "
               f"{len(season)} missing: {', '.join(season[:5])} ...")
    assert state.message.endswith(f"PhaseFailed: {message}")
    failure = state.result(raise_on_failure=False)
    assert isinstance(failure, PhaseFailed) and str(failure) == message
    wh = get_settings().warehouse_block()
    for spec in PRECOMPUTE.tables:
        assert int(wh.query(f"SELECT count(*) AS n FROM {spec.id}").n[0]) == 0, spec.id
