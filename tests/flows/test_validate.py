"""The validate subflow through a real temporary Prefect API, on a copy of the built
warehouse (the season's first four weeks): its report, its nba_ops rows, its artifacts."""

from __future__ import annotations

from datetime import date

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from flows.validate import validate
from tasks.validate import ValidationFailed

pytestmark = pytest.mark.e2e

START, END = date(2023, 11, 6), date(2023, 11, 12)


def _artifacts(key: str):
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
    return sorted(found, key=lambda a: a.created)


def test_a_clean_week_passes_and_leaves_its_results(prefect_api, built_copy, season_csv):
    state = validate("analytics", START, END, return_state=True)
    assert state.is_completed(), state.message
    report = state.result()
    assert report.status == "passed" and report.exit_code == 0
    days = season_csv["schedule"].GAME_DATE.between(str(START), str(END))
    assert report.dates_checked == season_csv["schedule"].GAME_DATE[days].nunique()
    assert {r.table for r in report.results} == {
        "nba_analytics.team_offense_game_summary", "nba_analytics.team_defense_game_summary",
        "nba_analytics.player_game_summary", "nba_analytics.player_game_context",
    }  # fmt: skip

    rows = built_copy.query(
        "SELECT * FROM nba_ops.validation_results WHERE validation_id = @v", {"v": report.validation_id}
    )
    assert len(rows) == len(report.results)  # one row per check
    assert rows.passed.all() and set(rows.phase) == {"analytics"}
    assert str(rows.flow_run_id.iloc[0]) == str(state.state_details.flow_run_id)

    markdown = _artifacts("validation-analytics")[-1]
    assert "analytics validation: passed" in markdown.data
    assert "points_equal_player_sum" in markdown.data


def test_a_critical_failure_fails_the_run_with_its_report(prefect_api, built_copy):
    built_copy.query("DELETE FROM nba_analytics.player_game_summary WHERE game_date = DATE '2023-11-08'")
    state = validate("analytics", START, END, return_state=True)
    assert state.is_failed()
    assert "player_game_summary coverage" in state.message and "missing 2023-11-08" in state.message
    error = state.result(raise_on_failure=False)
    assert isinstance(error, ValidationFailed)
    blocking = {(r.table, r.name) for r in error.report.blocking}
    assert ("nba_analytics.player_game_summary", "coverage") in blocking
    assert error.report.blocking_dates() == [date(2023, 11, 8)]

    failures = _artifacts("validation-failures-analytics")[-1]
    assert any(row["check"] == "coverage" for row in _table_rows(failures.data))
    recorded = built_copy.query(
        "SELECT check_name FROM nba_ops.validation_results WHERE validation_id = @v AND NOT passed",
        {"v": error.report.validation_id},
    )
    assert "coverage" in set(recorded.check_name)


def test_without_fail_on_critical_the_report_is_returned(prefect_api, built_copy):
    built_copy.query("UPDATE nba_analytics.player_game_summary SET usage_rate = 300 WHERE game_date = DATE '2023-11-08' AND minutes > 0")
    report = validate("analytics", START, END, fail_on_critical=False)
    assert report.status == "failed" and report.exit_code == 1
    assert [r.name for r in report.blocking] == ["impossible_values"]


def test_an_unknown_phase_fails_clearly(prefect_api, hoopflow_home):
    state = validate("gold", START, END, return_state=True)
    assert state.is_failed() and "unknown phase 'gold'" in state.message


def _table_rows(data):
    import json

    rows = json.loads(data) if isinstance(data, str) else data
    return rows
