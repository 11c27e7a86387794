"""The ML tasks on BigQuery (the bqemulator package serving the BigQuery REST API on a loopback
port), through the settings object as production runs them: a model trained on ml_home's
DuckDB feature store is registered into nba_predictions.models on BigQuery, the latest model
is found there, two dates are predicted and graded (one before its box score is in), and the
rows equal what the same model computes from the DuckDB rows."""

from __future__ import annotations

import os
from datetime import date

import numpy as np
import pandas as pd
import pytest

from blocks.settings import get_settings, reset_settings
from tasks import ml
from tasks.precompute import ML_FEATURE_STORE
from tasks.raw import RAW_PLAYER_BOXSCORES
from tests.bigquery import PROJECT
from tests.conftest import ML_END, ML_START

pytestmark = [pytest.mark.bigquery, pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")]

GRADED, WAITING = date(2024, 2, 14), date(2024, 2, 15)  # the second: its box score not loaded


@pytest.fixture(scope="module")
def from_duckdb(ml_home) -> tuple[ml.Trained, pd.DataFrame, pd.DataFrame]:
    """A model trained on ml_home (DuckDB), and the two dates' feature-store and box-score rows."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOOPFLOW_HOME", str(ml_home))
        reset_settings()
        store = ml.feature_rows(ML_START, ML_END)
        box = get_settings().warehouse_block().query(
            f"SELECT * FROM {RAW_PLAYER_BOXSCORES.id} WHERE game_date = @d", {"d": GRADED}
        )
    reset_settings()
    return ml.train_on(store, ML_START, ML_END), store[store.game_date.isin([GRADED, WAITING])], box


@pytest.fixture
def on_bigquery(tmp_path, bigquery_emulator, monkeypatch):
    for name in [n for n in os.environ if n.startswith("HOOPFLOW_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HOOPFLOW_HOME", str(tmp_path / "home"))  # the landing zone (local)
    monkeypatch.setenv("HOOPFLOW_WAREHOUSE", "bigquery")
    monkeypatch.setenv("HOOPFLOW_BIGQUERY__PROJECT", PROJECT)
    monkeypatch.setenv("HOOPFLOW_BIGQUERY__API_ENDPOINT", bigquery_emulator)
    monkeypatch.setenv("HOOPFLOW_BIGQUERY__DATASET_PREFIX", "test_ml_")  # this module's datasets
    reset_settings()
    yield get_settings().warehouse_block()
    reset_settings()


def test_register_predict_and_grade_on_bigquery(from_duckdb, on_bigquery):
    from blocks.warehouse_bigquery import BigQueryWarehouse

    trained, rows, box = from_duckdb
    wh = on_bigquery
    assert isinstance(wh, BigQueryWarehouse)
    ml.ensure_ml_tables()
    wh.ensure_tables([ML_FEATURE_STORE, RAW_PLAYER_BOXSCORES])
    for d in (GRADED, WAITING):
        wh.replace_partition(ML_FEATURE_STORE, d, rows[rows.game_date == d])
    wh.replace_partition(RAW_PLAYER_BOXSCORES, GRADED, box)

    report = ml.register_model.fn(trained)
    latest = ml.latest_model()
    assert latest.version == report.version and latest.test_end == ML_END
    assert ml.load_model(latest.model_path).predict(rows).tolist() == trained.model.predict(rows).tolist()

    for d in (GRADED, WAITING):
        assert ml.predict_date.fn(d, latest.version, latest.model_path).status == "predicted"
    ml.predict_date.fn(GRADED, latest.version, latest.model_path)  # again: replaced, not added
    predicted = wh.query("SELECT game_date, player_id, predicted_points FROM nba_predictions.predictions")
    kept = rows[ml.passes_quality(rows)]
    assert len(predicted) == len(kept)
    mine = kept.assign(expected=trained.model.predict(kept))[["game_date", "player_id", "expected"]]
    both = predicted.assign(game_date=pd.to_datetime(predicted.game_date).dt.date, player_id=predicted.player_id.astype(int))
    both = both.merge(mine.assign(player_id=mine.player_id.astype(int)), on=["game_date", "player_id"])
    assert len(both) == len(kept)
    np.testing.assert_allclose(both.predicted_points, both.expected, rtol=0, atol=1e-9)

    graded = ml.grade_date.fn(GRADED)
    waiting = ml.grade_date.fn(WAITING)
    assert graded.status == "graded" and graded.rows == (kept.game_date == GRADED).sum()
    assert waiting.status == "ungraded" and "no box score for 2024-02-15 yet" in waiting.message
    day = kept[kept.game_date == GRADED]
    expected_mae = np.abs(trained.model.predict(day) - day.actual_points).mean()
    assert graded.mae == pytest.approx(expected_mae, abs=1e-9)
    summary = ml.graded_summary(GRADED, WAITING)
    assert summary["rows"] == graded.rows and summary["mae"] == pytest.approx(expected_mae, abs=1e-9)
    ledger = wh.query("SELECT processor, count(*) AS n FROM nba_ops.run_ledger GROUP BY processor ORDER BY processor")
    assert dict(zip(ledger.processor, ledger.n, strict=True)) == {"grading": 1, "predictions": 3}
