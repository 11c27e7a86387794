"""The nightly run through a real temporary Prefect API, on a copy of the built warehouse
(the season's first four weeks, through 2023-11-20): the next game date goes through every
phase and its validation, and the day's report shows what pandas finds in the CSVs."""

from __future__ import annotations

from datetime import date

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from flows.daily import daily

pytestmark = pytest.mark.e2e

NEXT_DATE = date(2023, 11, 21)  # the first game date after the built weeks


def _report() -> str:
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["daily-report"])))
    return sorted(found, key=lambda a: a.created)[-1].data


def _ledger_rows(wh) -> int:
    return int(wh.query("SELECT count(*) AS n FROM nba_ops.run_ledger").n[0])


def test_the_next_game_date_runs_every_phase_and_reports_the_day(prefect_api, built_copy, season_csv):
    state = daily(NEXT_DATE, return_state=True)
    assert state.is_completed(), state.message
    report = state.result()
    assert [r.phase for r in report.phases] == ["raw", "reconcile", "analytics", "precompute"]
    assert all(r.ran == [NEXT_DATE] and r.validation.status in ("passed", "warnings") for r in report.phases)

    day = str(NEXT_DATE)
    box = season_csv["player_box"][season_csv["player_box"].GAME_DATE == day]
    games = season_csv["schedule"][season_csv["schedule"].GAME_DATE == day]
    wh = built_copy
    rows = wh.query("SELECT count(*) AS n FROM nba_analytics.player_game_summary WHERE game_date = @d", {"d": NEXT_DATE})
    assert rows.n[0] == len(box)
    store = wh.query("SELECT player_id FROM nba_precompute.ml_feature_store WHERE game_date = @d", {"d": NEXT_DATE})
    assert len(store) and store.player_id.is_unique and set(store.player_id) <= set(box.PLAYER_ID)

    text = _report()
    assert text.startswith(f"# daily {day}: completed; {len(games)} games")
    for g in games.itertuples():
        assert f"| {g.AWAY_TEAM_ABBREVIATION} | {g.AWAY_PTS} | {g.HOME_TEAM_ABBREVIATION} | {g.HOME_PTS} |" in text
    top = box.sort_values(["PTS", "PLAYER_NAME"], ascending=[False, True]).iloc[0]
    assert f"| {top.PLAYER_NAME} | {top.TEAM_ABBREVIATION} | {top.PTS} |" in text

    # A second run finds every phase current: nothing is written again.
    before = _ledger_rows(wh)
    again = daily(NEXT_DATE, return_state=True)
    assert again.is_completed(), again.message
    assert all(not r.ran for r in again.result().phases)
    assert _ledger_rows(wh) == before


def test_a_day_without_games_completes_with_a_note(prefect_api, hoopflow_home):
    state = daily(date(2023, 11, 23), return_state=True)  # Thanksgiving: no games
    assert state.is_completed(), state.message
    assert state.result().notes == ["No games on 2023-11-23: nothing to ingest."]
    assert _report().startswith("# daily 2023-11-23: no games")
    assert not (hoopflow_home / "warehouse.duckdb").exists()  # nothing written


def test_a_date_after_a_gap_fails_naming_the_missing_date(prefect_api, built_copy, season_csv):
    state = daily(date(2023, 11, 22), return_state=True)  # 2023-11-21 was never loaded
    assert state.is_failed()
    assert "analytics 2023-11-22" in state.message and "2023-11-21" in state.message
    games = (season_csv["schedule"].GAME_DATE == "2023-11-22").sum()
    assert f"daily 2023-11-22: failed; {games} games; raw ran, reconcile ran, analytics failed" in state.message  # raw loaded them
    # The day's report names the missing history: the box scores of the season before the date.
    assert ("needs nba_raw.player_boxscores for every game date of its season before 2023-11-22; "
            "1 missing: 2023-11-21") in _report()  # fmt: skip
