"""Validation checks on a real warehouse: the bundled season's first four weeks, built once
(raw + analytics, the task functions without Prefect) and copied for each test. On the real
data every check passes; then one seeded defect per check kind, each caught by its check.

The defects are written by hand as SQL against the copy; what each check must report
(dates, rows) is known from the defect itself, never from the code under test."""

from __future__ import annotations

import shutil
import uuid
from datetime import date, datetime, timezone
from pathlib import Path

import pandas as pd
import pytest

from blocks.warehouse_duckdb import DuckDBWarehouse
from blocks.settings import get_settings
from engine.checks import CheckResult, Scope
from engine.ledger import RUN_LEDGER
from tasks.phases import TABLE_PHASE, TABLES, processable
from engine.thresholds import TableThresholds
from tasks.validate import all_thresholds, check_table
from tests.conftest import BUILT_END, BUILT_START



@pytest.fixture
def wh(built_home: Path, tmp_path: Path) -> DuckDBWarehouse:
    """A private copy of the built warehouse (defects stay in this test)."""
    copy = tmp_path / "warehouse.duckdb"
    shutil.copy(built_home / "warehouse.duckdb", copy)
    return DuckDBWarehouse(path=str(copy))


@pytest.fixture(scope="module")
def scope(season_csv) -> Scope:
    dates = sorted(
        {date.fromisoformat(d) for d in season_csv["schedule"].GAME_DATE
         if str(BUILT_START) <= d <= str(BUILT_END)}
    )  # fmt: skip
    return Scope(BUILT_START, BUILT_END, tuple(dates))


@pytest.fixture(scope="module")
def thresholds(built_home) -> dict[str, TableThresholds]:
    return all_thresholds()


def check(wh, table: str, scope: Scope, thresholds, **overrides) -> dict[str, CheckResult]:
    t = thresholds[table].model_copy(update=overrides) if overrides else thresholds[table]
    # precompute: no bootstrap days
    scope = Scope(scope.start, scope.end, tuple(processable(TABLE_PHASE[table], list(scope.dates))))
    results = check_table(wh, table, scope, t, get_settings().source_block())
    return {r.name: r for r in results}


def failed(results: dict[str, CheckResult]) -> set[str]:
    return {name for name, r in results.items() if not r.passed}


def test_the_real_season_passes_every_check(wh, scope, thresholds, built_home):
    run = {name: check(wh, name, scope, thresholds) for name in TABLES}
    problems = [f"{r.table} {r.name}: {r.message}" for res in run.values() for r in res.values() if not r.passed]
    assert problems == []
    kinds = {r.kind for res in run.values() for r in res.values()}
    # Every check kind ran on some table.
    assert kinds == {
        "coverage", "completeness", "row_count", "duplicate_keys", "null_rate", "impossible_values",
        "identity", "date_gaps", "monthly_volume", "feature_regression", "spot_check", "bootstrap_exclusion",
    }  # fmt: skip
    regression = run["player_game_summary"]["feature_regression"]
    assert regression.observed is not None and "0 regressions" in regression.message


# ---------------------------------------------------------------- one defect per check kind


def test_coverage_names_the_missing_date(wh, scope, thresholds):
    wh.query("DELETE FROM nba_analytics.player_game_summary WHERE game_date = DATE '2023-11-08'")
    r = check(wh, "player_game_summary", scope, thresholds)["coverage"]
    assert not r.passed and r.severity == "critical"
    assert r.sample == [{"game_date": date(2023, 11, 8)}]
    assert r.observed == pytest.approx(1 - 1 / len(scope.dates))


def test_completeness_sees_a_processor_whose_last_attempt_failed(wh, scope, thresholds):
    now = datetime.now(timezone.utc)
    wh.append(RUN_LEDGER, pd.DataFrame([{
        "run_id": str(uuid.uuid4()), "processor": "player_game_summary", "game_date": date(2023, 11, 8),
        "status": "failed", "rows_written": 0, "seconds": 0.1, "input_fingerprint": "x", "code_version": "y",
        "flow_run_id": None, "task_run_id": None, "attempt": 1, "error": "boom", "detail": "{}",
        "started_at": now, "finished_at": now,
    }]))  # fmt: skip
    r = check(wh, "player_game_summary", scope, thresholds)["completeness"]
    assert not r.passed
    assert r.sample == [{"processor": "player_game_summary", "game_date": date(2023, 11, 8),
                         "last_status": "failed", "error": "boom"}]  # fmt: skip
    # The other tables' processors are not affected.
    assert check(wh, "team_offense_game_summary", scope, thresholds)["completeness"].passed


def test_row_count_sees_a_game_with_one_team_row(wh, scope, thresholds):
    wh.query(
        "DELETE FROM nba_analytics.team_offense_game_summary WHERE game_id = '0022300180' AND home"
    )
    r = check(wh, "team_offense_game_summary", scope, thresholds)["row_count"]
    assert not r.passed and r.observed == 1
    assert r.sample[0]["game_id"] == "0022300180" and r.sample[0]["row_count"] == 1


def test_row_count_band_sees_a_team_game_with_five_players(wh, scope, thresholds):
    wh.query("""
        DELETE FROM nba_raw.player_boxscores WHERE rowid IN (
            SELECT rowid FROM nba_raw.player_boxscores
            WHERE game_id = '0022300180' AND home_away = 'H' ORDER BY min DESC OFFSET 5)""")
    r = check(wh, "player_boxscores", scope, thresholds)["rows_per_team_game"]
    assert not r.passed and r.observed == 1
    assert (r.sample[0]["game_id"], r.sample[0]["row_count"]) == ("0022300180", 5)


def test_duplicate_keys_names_the_key(wh, scope, thresholds):
    wh.query("""
        INSERT INTO nba_analytics.player_game_summary
        SELECT * FROM nba_analytics.player_game_summary WHERE game_id = '0022300180' AND player_id = (
            SELECT min(player_id) FROM nba_analytics.player_game_summary WHERE game_id = '0022300180')""")
    r = check(wh, "player_game_summary", scope, thresholds)["duplicate_keys"]
    assert not r.passed and r.observed == 1
    assert r.sample[0]["game_id"] == "0022300180" and r.sample[0]["copies"] == 2


def test_null_rate_sees_a_null_in_a_critical_column(wh, scope, thresholds):
    wh.query("""
        UPDATE nba_analytics.team_offense_game_summary SET pace = NULL
        WHERE game_id = '0022300180' AND home""")
    r = check(wh, "team_offense_game_summary", scope, thresholds)["null_rate"]
    assert not r.passed
    assert r.sample[0]["column"] == "pace" and r.sample[0]["null_rate"] > 0


def test_impossible_values_names_the_row_and_column(wh, scope, thresholds):
    wh.query("""
        UPDATE nba_analytics.player_game_summary SET usage_rate = 140
        WHERE game_id = '0022300180' AND player_id = (
            SELECT min(player_id) FROM nba_analytics.player_game_summary WHERE game_id = '0022300180')""")
    r = check(wh, "player_game_summary", scope, thresholds)["impossible_values"]
    assert not r.passed and r.observed == 1
    assert r.sample[0]["usage_rate"] == 140 and r.sample[0]["game_id"] == "0022300180"


def test_a_cross_field_identity_sees_one_bad_row(wh, scope, thresholds):
    wh.query("""
        UPDATE nba_raw.player_boxscores SET reb = reb + 1
        WHERE rowid = (SELECT min(rowid) FROM nba_raw.player_boxscores WHERE game_id = '0022300180')""")
    results = check(wh, "player_boxscores", scope, thresholds)
    assert failed(results) == {"rebounds_add_up"}
    assert results["rebounds_add_up"].sample[0]["game_id"] == "0022300180"


def test_a_cross_table_identity_sees_points_that_do_not_add_up(wh, scope, thresholds):
    wh.query("""
        UPDATE nba_analytics.team_defense_game_summary SET points_allowed = points_allowed + 2
        WHERE game_id = '0022300180' AND home""")
    results = check(wh, "team_defense_game_summary", scope, thresholds)
    assert failed(results) == {"points_allowed_equal_opponent_points"}
    bad = results["points_allowed_equal_opponent_points"].sample[0]
    assert bad["points_allowed"] == bad["opponent_points"] + 2


def test_bootstrap_exclusion_sees_rows_in_a_seasons_first_days(wh, scope, thresholds):
    # No precompute table yet: player_game_context has rows from opening night, so held to a
    # 14-day bootstrap rule it must fail on exactly those dates, and pass once they are gone.
    first_days = [d for d in scope.dates if d < date(2023, 11, 7)]
    r = check(wh, "player_game_context", scope, thresholds, bootstrap_days=14)["bootstrap_exclusion"]
    assert not r.passed and r.observed == len(first_days)
    assert [row["game_date"] for row in r.sample] == first_days[:10]
    wh.query("DELETE FROM nba_analytics.player_game_context WHERE game_date < DATE '2023-11-07'")
    r = check(wh, "player_game_context", scope, thresholds, bootstrap_days=14)["bootstrap_exclusion"]
    assert r.passed


def test_date_gaps_sees_a_lost_week(wh, scope, thresholds):
    wh.query("DELETE FROM nba_raw.schedule WHERE game_date BETWEEN DATE '2023-11-06' AND DATE '2023-11-14'")
    r = check(wh, "schedule", scope, thresholds)["date_gaps"]
    assert not r.passed and r.severity == "warning"
    assert r.sample == [{"last_date_before": date(2023, 11, 5), "next_date": date(2023, 11, 15),
                         "days_without_rows": 9}]  # fmt: skip


def test_monthly_volume_sees_a_month_that_lost_its_bench(wh, scope, thresholds):
    wh.query("DELETE FROM nba_analytics.player_game_summary WHERE game_date >= DATE '2023-11-01' AND minutes < 12")
    r = check(wh, "player_game_summary", scope, thresholds)["monthly_volume"]
    assert not r.passed and r.severity == "warning"
    # With two months, each is compared with the other: both are flagged, November low.
    november = next(row for row in r.sample if (row["year"], row["month"]) == (2023, 11))
    assert november["rows_per_game"] < 0.85 * november["others_median"]


def test_feature_regression_sees_a_feature_gone_to_zero(wh, scope, thresholds):
    # The old system's feature that was all zeros for months.
    wh.query("UPDATE nba_analytics.player_game_summary SET usage_rate = 0 WHERE game_date >= DATE '2023-11-07'")
    r = check(wh, "player_game_summary", scope, thresholds)["feature_regression"]
    assert not r.passed and r.severity == "warning"
    assert {row["column"] for row in r.sample} == {"usage_rate"}


def test_feature_regression_sees_a_coverage_drop(wh, scope, thresholds):
    wh.query("""
        UPDATE nba_analytics.team_offense_game_summary SET ts_pct = NULL
        WHERE game_date >= DATE '2023-11-07' AND NOT home""")
    r = check(wh, "team_offense_game_summary", scope, thresholds)["feature_regression"]
    assert not r.passed
    assert {row["column"] for row in r.sample} == {"ts_pct"}
    assert min(row["coverage_drop"] for row in r.sample) > 0.4  # half the rows lost the value


def _top_scorer(season_csv) -> pd.Series:
    box = season_csv["player_box"]
    box = box[box.GAME_DATE.between(str(BUILT_START), str(BUILT_END))]
    return box.sort_values("PTS", ascending=False).iloc[0]


def test_spot_check_compares_top_scorers_with_the_raw_box_score(wh, scope, thresholds, season_csv):
    top = _top_scorer(season_csv)
    wh.query(
        "UPDATE nba_analytics.player_game_summary SET minutes = minutes - 3 WHERE game_id = @g AND player_id = @p",
        {"g": top.GAME_ID, "p": int(top.PLAYER_ID)},
    )
    r = check(wh, "player_game_summary", scope, thresholds)["spot_check"]
    assert not r.passed and r.observed == 1
    assert (r.sample[0]["player_id"], r.sample[0]["minutes"]) == (top.PLAYER_ID, top.MIN - 3)


def test_spot_check_compares_raw_top_scorers_with_the_source(wh, scope, thresholds, season_csv):
    top = _top_scorer(season_csv)
    wh.query(
        "UPDATE nba_raw.player_boxscores SET fga = fga + 1 WHERE game_id = @g AND player_id = @p",
        {"g": top.GAME_ID, "p": int(top.PLAYER_ID)},
    )
    r = check(wh, "player_boxscores", scope, thresholds)["spot_check"]
    assert not r.passed
    assert (r.sample[0]["fga"], r.sample[0]["fga_reference"]) == (top.FGA + 1, top.FGA)


def test_severity_can_be_overridden_per_check(wh, scope, thresholds):
    wh.query("DELETE FROM nba_raw.schedule WHERE game_date BETWEEN DATE '2023-11-06' AND DATE '2023-11-14'")
    r = check(wh, "schedule", scope, thresholds, severity={"date_gaps": "critical"})["date_gaps"]
    assert r.blocking


def test_bootstrap_exclusion_sees_a_feature_row_written_too_early(wh, scope, thresholds):
    wh.query("""
        INSERT INTO nba_precompute.ml_feature_store
        SELECT * REPLACE (DATE '2023-10-30' AS game_date) FROM nba_precompute.ml_feature_store
        WHERE game_date = DATE '2023-11-08' LIMIT 1""")
    r = check(wh, "ml_feature_store", scope, thresholds)["bootstrap_exclusion"]
    assert not r.passed and r.severity == "critical"
    assert r.sample == [{"game_date": date(2023, 10, 30), "season_start": date(2023, 10, 24)}]
