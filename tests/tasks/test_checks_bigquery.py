"""The validation checks on BigQuery (the bqemulator package serving the BigQuery REST API on
a loopback port) exactly as on DuckDB: the bundled season's first three game dates are built
(raw, reconcile, analytics: the task functions without Prefect) into both warehouses, through the
settings object as production does; every check of every table passes on both, with the same
observed values; and one seeded defect is caught on BigQuery.

What the defect check must report is known from the defect itself, never from the code
under test."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from blocks.warehouse import Warehouse
from blocks.settings import get_settings, reset_settings
from engine.checks import CheckResult, Scope
from tasks.phases import run_directly
from tasks.phases import TABLE_PHASE, TABLES, processable
from tasks.validate import all_thresholds, check_table
from tests.bigquery import PROJECT

# The client libraries' pending deprecations (see blocks/warehouse_bigquery.py); pytest shows
# pending deprecations whatever the module filters.
pytestmark = [pytest.mark.bigquery, pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")]

# The season's first three game dates in the bundled schedule (16 games).
DATES = (date(2023, 10, 24), date(2023, 10, 25), date(2023, 10, 26))
SCOPE = Scope(DATES[0], DATES[-1], DATES)


@dataclass
class Built:
    warehouse: Warehouse
    results: dict[str, dict[str, CheckResult]]  # table → check name → result, before any defect


def check(wh: Warehouse, table: str, **overrides: object) -> dict[str, CheckResult]:
    """Every check of a table, called as tasks/validate.py's validate_table calls it
    (`overrides`: threshold values replaced for this call)."""
    t = all_thresholds()[table]
    # precompute: the three dates are bootstrap days, so nothing is processable (its tables
    # are empty here: their checks' SQL runs on BigQuery, on no rows)
    scope = Scope(SCOPE.start, SCOPE.end, tuple(processable(TABLE_PHASE[table], list(SCOPE.dates))))
    t = t.model_copy(update=overrides) if overrides else t
    results = check_table(wh, table, scope, t, get_settings().source_block())
    by_name = {r.name: r for r in results}
    assert len(by_name) == len(results), f"{table}: two checks share a name"
    return by_name


def build(home: Path, env: dict[str, str]) -> Built:
    """The three dates built into the warehouse the settings pick from `env` (plus
    HOOPFLOW_HOME), and every check run once on it; the environment and the settings are
    restored before the tests use the result."""
    with pytest.MonkeyPatch.context() as mp:
        for name in [n for n in os.environ if n.startswith("HOOPFLOW_")]:
            mp.delenv(name)  # a developer's own HOOPFLOW_* would change what is built
        mp.setenv("HOOPFLOW_HOME", str(home))
        for name, value in env.items():
            mp.setenv(name, value)
        reset_settings()
        try:
            settings = get_settings()
            assert settings.source_block().game_dates(DATES[0], DATES[-1]) == list(DATES)
            run_directly(["raw", "reconcile", "analytics", "precompute"], list(DATES))
            wh = settings.warehouse_block()
            return Built(wh, {table: check(wh, table) for table in TABLES})
        finally:
            reset_settings()


@pytest.fixture(scope="module")
def on_duckdb(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build(tmp_path_factory.mktemp("duckdb") / "home", {"HOOPFLOW_WAREHOUSE": "duckdb"})


@pytest.fixture(scope="module")
def on_bigquery(tmp_path_factory: pytest.TempPathFactory, bigquery_emulator: str) -> Built:
    """Built once for the module; the defect test changes the warehouse afterwards, but the
    clean results were taken before any test ran."""
    env = {
        "HOOPFLOW_WAREHOUSE": "bigquery",
        "HOOPFLOW_BIGQUERY__PROJECT": PROJECT,
        "HOOPFLOW_BIGQUERY__API_ENDPOINT": bigquery_emulator,
        # One emulator for the session: these datasets are this module's own.
        "HOOPFLOW_BIGQUERY__DATASET_PREFIX": "test_checks_",
    }
    return build(tmp_path_factory.mktemp("bigquery") / "home", env)


def problems(results: dict[str, dict[str, CheckResult]]) -> list[str]:
    return [
        f"{r.table} {r.name}: {r.message} {r.sample[:2]}"
        for res in results.values() for r in res.values() if not r.passed
    ]  # fmt: skip


def differences(bq: dict[str, CheckResult], duck: dict[str, CheckResult]) -> list[str]:
    """The checks whose outcome differs between the two warehouses (passed, observed, message)."""
    assert set(bq) == set(duck)
    out = []
    for name, r in bq.items():
        d = duck[name]
        same_observed = (
            r.observed is None and d.observed is None
            or r.observed is not None and d.observed is not None
            and r.observed == pytest.approx(d.observed, rel=1e-9, abs=1e-12)
        )  # fmt: skip
        if r.passed != d.passed or not same_observed or r.message != d.message:
            out.append(f"{r.table} {name}: bigquery {r.passed} {r.observed!r} {r.message!r}"
                       f" / duckdb {d.passed} {d.observed!r} {d.message!r}")  # fmt: skip
    return out


def test_every_check_passes_on_bigquery_as_on_duckdb(on_bigquery: Built, on_duckdb: Built) -> None:
    from blocks.warehouse_bigquery import BigQueryWarehouse
    from blocks.warehouse_duckdb import DuckDBWarehouse

    assert isinstance(on_bigquery.warehouse, BigQueryWarehouse)
    assert isinstance(on_duckdb.warehouse, DuckDBWarehouse)
    bq, duck = on_bigquery.results, on_duckdb.results
    # The data is there: each table has rows on every date (not a vacuous pass).
    for table, res in bq.items():
        # precompute: bootstrap days; discrepancies: these dates have no finding
        if TABLES[table].dataset != "nba_precompute" and table != "discrepancies":
            assert res["coverage"].observed == 1.0, f"{table}: {res['coverage'].message}"

    assert problems(bq) == []
    assert problems(duck) == []
    assert set(bq) == set(duck)
    assert [diff for table in bq for diff in differences(bq[table], duck[table])] == []
    # Every kind configured for these tables ran on BigQuery too.
    kinds = {r.kind for res in bq.values() for r in res.values()}
    assert kinds == {
        "coverage", "completeness", "row_count", "duplicate_keys", "null_rate", "impossible_values",
        "identity", "date_gaps", "monthly_volume", "feature_regression", "spot_check",
        "bootstrap_exclusion",
    }  # fmt: skip

    # Bootstrap exclusion on a table that has rows (the precompute tables are empty here),
    # from opening night: it fails alike on both, naming the same dates.
    bq_boot = check(on_bigquery.warehouse, "player_game_context", bootstrap_days=14)
    duck_boot = check(on_duckdb.warehouse, "player_game_context", bootstrap_days=14)
    assert differences(bq_boot, duck_boot) == []
    r = bq_boot["bootstrap_exclusion"]
    assert not r.passed and r.observed == len(DATES)
    assert [row["game_date"] for row in r.sample] == list(DATES)
    assert r.sample == duck_boot["bootstrap_exclusion"].sample


def test_duplicate_keys_names_the_key_on_bigquery(on_bigquery: Built) -> None:
    wh = on_bigquery.warehouse
    game = "0022300063"  # CHA-ATL, the first game of 2023-10-25 in the bundled schedule
    # One of its players twice: DML through `query` (a query job on BigQuery).
    wh.query(
        """INSERT INTO nba_analytics.player_game_summary
        SELECT * FROM nba_analytics.player_game_summary WHERE game_id = @g AND player_id = (
            SELECT min(player_id) FROM nba_analytics.player_game_summary WHERE game_id = @g)""",
        {"g": game},
    )
    results = check(wh, "player_game_summary")
    assert {name for name, r in results.items() if not r.passed} == {"duplicate_keys"}
    r = results["duplicate_keys"]
    assert r.observed == 1 and r.severity == "critical" and r.blocking
    assert len(r.sample) == 1
    assert r.sample[0]["game_id"] == game and r.sample[0]["copies"] == 2
