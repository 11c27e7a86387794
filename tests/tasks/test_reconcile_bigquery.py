"""The reconcile phase on BigQuery (the bqemulator package serving the BigQuery REST API on a
loopback port) exactly as on DuckDB: two real dates with five findings between them, built
through raw and reconcile by the task functions into both warehouses through the settings
object; the mapping, the findings and the quality scores are the same rows."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from blocks.settings import get_settings, reset_settings
from tasks.phases import run_directly
from tests.bigquery import PROJECT
from tests.conftest import SEASON_DIR

pytestmark = [pytest.mark.bigquery, pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")]

DATES = [date(2023, 10, 27), date(2023, 10, 28)]  # 0022300078 (5 findings), 0022300089, 0022300091
# Each table's rows without the columns a run stamps (when it ran), in one order.
TABLES = {
    "nba_ops.provider_games": (["game_date", "game_id"], ["reconciled_at"]),
    "nba_ops.discrepancies": (["finding_key"], ["first_seen_at", "last_seen_at", "resolved_at"]),
    "nba_ops.game_quality": (["game_date", "game_id"], []),
}


def build(home: Path, env: dict[str, str]) -> dict[str, pd.DataFrame]:
    with pytest.MonkeyPatch.context() as mp:
        for name in [n for n in os.environ if n.startswith("HOOPFLOW_")]:
            mp.delenv(name)
        mp.setenv("HOOPFLOW_HOME", str(home))
        for name, value in env.items():
            mp.setenv(name, value)
        reset_settings()
        try:
            run_directly(["raw", "reconcile"], DATES)
            wh = get_settings().warehouse_block()
            out = {}
            for table, (order, stamped) in TABLES.items():
                df = wh.query(f"SELECT * FROM {table}").drop(columns=stamped)
                df["game_date"] = pd.to_datetime(df.game_date).dt.date
                out[table] = df.sort_values(order).reset_index(drop=True)
            return out
        finally:
            reset_settings()


def test_reconcile_writes_the_same_rows_on_bigquery_as_on_duckdb(tmp_path, bigquery_emulator: str) -> None:
    duck = build(tmp_path / "duckdb", {"HOOPFLOW_WAREHOUSE": "duckdb"})
    bq = build(tmp_path / "bigquery", {
        "HOOPFLOW_WAREHOUSE": "bigquery", "HOOPFLOW_BIGQUERY__PROJECT": PROJECT,
        "HOOPFLOW_BIGQUERY__API_ENDPOINT": bigquery_emulator,
        "HOOPFLOW_BIGQUERY__DATASET_PREFIX": "test_reconcile_",
    })  # fmt: skip
    schedule = pd.read_csv(SEASON_DIR / "schedule.csv.gz")
    games = int(schedule.GAME_DATE.isin([str(d) for d in DATES]).sum())
    # the real disagreements of these dates (docs/design/reconciliation.md), one score a game
    assert len(duck["nba_ops.discrepancies"]) == 7 and len(duck["nba_ops.game_quality"]) == games
    for table in TABLES:
        d, b = duck[table], bq[table]
        assert list(b.columns) == list(d.columns), table
        for col in d.columns:
            left, right = d[col].astype(object).where(d[col].notna(), None), b[col].astype(object).where(b[col].notna(), None)
            if pd.api.types.is_numeric_dtype(d[col]) and pd.api.types.is_numeric_dtype(b[col]):
                pd.testing.assert_series_equal(d[col].astype("float64"), b[col].astype("float64"), check_names=False,
                                               obj=f"{table}.{col}")  # fmt: skip
            else:
                assert [None if pd.isna(v) else str(v) for v in left] == [None if pd.isna(v) else str(v) for v in right], f"{table}.{col}"
