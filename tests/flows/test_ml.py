"""The ML flows through a real temporary Prefect API, on a copy of ml_home (the bundled season
through 2024-02-15): `ml` trains and registers a model, predicts and grades its test dates,
and the predictions beat the last-10 baseline computed from the box-score CSV; a refused gate
fails the run with its numbers and registers nothing; the CLI's exit codes."""

from __future__ import annotations

import json
import shutil
from datetime import date

import pandas as pd
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, FlowRunFilter, FlowRunFilterName

from flows.ml import ml, predict
from hoopflow import cli
from blocks.settings import get_settings, reset_settings
from tasks.ml import ModelRejected, NoRegisteredModel
from tests.conftest import ML_END, ML_START

pytestmark = pytest.mark.e2e


@pytest.fixture
def cli_env(hoopflow_home, monkeypatch):
    # The CLI sets Prefect variables with setdefault; set them here so monkeypatch restores them.
    monkeypatch.setenv("PREFECT_LOCAL_STORAGE_PATH", str(hoopflow_home / "results"))
    monkeypatch.setenv("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    monkeypatch.setenv("PREFECT_RESULTS_PERSIST_BY_DEFAULT", "true")
    return hoopflow_home


@pytest.fixture
def ml_copy(ml_home, cli_env):
    """ml_home's warehouse as this test's (a copy it may change)."""
    cli_env.mkdir(parents=True, exist_ok=True)
    shutil.copy(ml_home / "warehouse.duckdb", cli_env / "warehouse.duckdb")
    return get_settings().warehouse_block()


@pytest.fixture(scope="module")
def box(season_csv) -> pd.DataFrame:
    """Each player-game's points and his last-10 average before it, from the CSV alone."""
    b = season_csv["player_box"].sort_values(["PLAYER_ID", "GAME_DATE", "GAME_ID"]).copy()
    b["last_10_csv"] = b.groupby("PLAYER_ID").PTS.transform(lambda s: s.shift().rolling(10, min_periods=1).mean())
    return b.rename(columns={"GAME_ID": "game_id", "PLAYER_ID": "player_id"})[
        ["game_id", "player_id", "GAME_DATE", "PTS", "last_10_csv"]
    ]


def _artifacts(key: str):
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
    return sorted(found, key=lambda a: a.created)


def _runs(name: str):
    with get_client(sync_client=True) as client:
        return client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name])))


def _dates(series: pd.Series) -> list[date]:
    return sorted(set(pd.to_datetime(series).dt.date))


def test_ml_registers_a_model_then_predicts_and_grades_its_test_dates(prefect_api, ml_copy, hoopflow_home, box):
    state = ml(ML_START, ML_END, return_state=True)
    assert state.is_completed(), state.message
    result = state.result()
    test_dates = list(result.training.split.test)
    assert test_dates[-1] == ML_END and result.dates_predicted == result.dates_graded == test_dates

    models = ml_copy.query("SELECT * FROM nba_predictions.models")
    assert len(models) == 1
    row = models.iloc[0]
    assert row.model_version == result.model_version and row.feature_version == "v1"
    assert pd.Timestamp(row.test_start).date() == test_dates[0]
    assert pd.Timestamp(row.train_end).date() < pd.Timestamp(row.validation_start).date()
    assert pd.Timestamp(row.validation_end).date() < test_dates[0]
    assert json.loads(row.metrics)["model"]["mae"] == pytest.approx(row.test_mae)
    assert set(json.loads(row.feature_importance)) == set(json.loads(row.features))
    model_file = hoopflow_home / "landing" / row.model_path
    assert model_file.is_file() and (model_file.parent / "evaluation.png").is_file()

    # the predictions, judged against the box scores independently of the code under test
    predictions = ml_copy.query("SELECT game_id, player_id, game_date, predicted_points, model_version "
                                "FROM nba_predictions.predictions")  # fmt: skip
    assert _dates(predictions.game_date) == test_dates
    assert set(predictions.model_version) == {result.model_version}
    judged = predictions.merge(box, on=["game_id", "player_id"])
    assert len(judged) == len(predictions) == row.test_rows
    model_mae = (judged.predicted_points - judged.PTS).abs().mean()
    last_10_mae = (judged.last_10_csv - judged.PTS).abs().mean()
    assert model_mae < last_10_mae - 0.03  # the gate's margin, measured from the CSV
    assert model_mae == pytest.approx(row.test_mae)

    grading = ml_copy.query("SELECT game_id, player_id, actual_points, error, predicted_points "
                            "FROM nba_predictions.grading")  # fmt: skip
    graded = grading.merge(box, on=["game_id", "player_id"])
    assert len(graded) == len(grading) == len(predictions)
    assert (graded.actual_points == graded.PTS).all()
    assert (graded.error - (graded.predicted_points - graded.PTS)).abs().max() < 1e-9
    assert result.graded["rows"] == len(grading) and result.graded["mae"] == pytest.approx(model_mae)

    markdown = _artifacts("ml-model")[-1].data
    assert "points model 2023-10-24 → 2024-02-15" in markdown and "data:image/png;base64," in markdown
    assert "| last-10 average |" in markdown and result.model_version in markdown
    assert _artifacts("ml-metrics") and _artifacts("ml-predictions") and _artifacts("ml-grades")
    for name in (f"ml-{ML_START}-{ML_END}", f"train-{ML_START}-{ML_END}",
                 f"predict-{test_dates[0]}-{test_dates[-1]}", f"grade-{test_dates[0]}-{test_dates[-1]}"):  # fmt: skip
        assert _runs(name), name


def test_a_refused_gate_fails_the_run_with_its_numbers_and_registers_nothing(prefect_api, ml_copy, hoopflow_home,
                                                                            monkeypatch):  # fmt: skip
    # A margin no points model reaches (1 point of MAE below the players' own averages).
    monkeypatch.setenv("HOOPFLOW_THRESHOLDS__MODELS__MIN_MAE_MARGIN", "1.0")
    reset_settings()
    state = ml(ML_START, ML_END, return_state=True)
    assert state.is_failed()
    assert "model REFUSED: test MAE" in state.message and "is not 1 below the best baseline" in state.message
    error = state.result(raise_on_failure=False)
    assert isinstance(error, ModelRejected) and not error.report.decision.passed
    assert error.report.metrics["model"].mae < error.report.metrics["last_10"].mae  # a good model, refused
    train_runs = _runs(f"train-{ML_START}-{ML_END}")
    assert any(r.state.is_failed() and "REFUSED" in r.state.message for r in train_runs)

    for table in ("models", "predictions", "grading"):
        assert ml_copy.query(f"SELECT count(*) AS n FROM nba_predictions.{table}").n[0] == 0
    assert not (hoopflow_home / "landing" / "models").exists()
    assert "❌" in _artifacts("ml-model")[-1].data and "is not 1 below" in _artifacts("ml-model")[-1].data

    state = predict(date(2024, 2, 1), return_state=True)  # nothing registered: predict says so
    assert state.is_failed() and isinstance(state.result(raise_on_failure=False), NoRegisteredModel)
    assert "no registered model for feature version v1" in state.message


def test_the_cli_trains_predicts_and_grades(prefect_api, ml_copy, capsys, box):
    assert cli.main(["train", "--start", str(ML_START), "--end", str(ML_END), "--test-from", "2024-02-01"]) == 0
    out = capsys.readouterr().out
    assert "model registered" in out and "2024-02-01 → 2024-02-15" in out
    assert "last-10 average" in out and "season average" in out and "25+" in out

    day, next_day = "2024-02-01", "2024-02-02"
    assert cli.main(["predict", "--start", day, "--end", day]) == 0
    first = ml_copy.query("SELECT count(*) AS n FROM nba_predictions.predictions").n[0]
    assert cli.main(["predict", "--start", day, "--end", next_day]) == 0  # the first date again
    again = ml_copy.query("SELECT game_date, count(*) AS n FROM nba_predictions.predictions GROUP BY 1 ORDER BY 1")
    assert list(again.n)[0] == first  # replaced, not duplicated
    assert _runs(f"predict-{day}") and _runs(f"predict-{day}-{next_day}")
    capsys.readouterr()

    # the second date's games are not in yet: it stays ungraded, the first is graded
    ml_copy.query("DELETE FROM nba_raw.player_boxscores WHERE game_date = DATE '2024-02-02'")
    assert cli.main(["grade", "--start", day, "--end", next_day]) == 0
    out = capsys.readouterr().out
    assert "2 dates (1 graded, 1 ungraded)" in out
    assert "no box score for 2024-02-02 yet: graded once its games are in" in out
    graded = ml_copy.query("SELECT game_id, player_id, game_date, actual_points FROM nba_predictions.grading")
    assert _dates(graded.game_date) == [date(2024, 2, 1)]
    assert f"{len(graded)} predictions graded" in out and len(graded) == list(again.n)[0]
    judged = graded.merge(box, on=["game_id", "player_id"])
    assert len(judged) == len(graded) and (judged.actual_points == judged.PTS).all()


def test_the_cli_exits_1_when_the_gate_refuses_or_nothing_is_registered(prefect_api, ml_copy, capsys, monkeypatch):
    assert cli.main(["predict", "--start", "2024-02-01", "--end", "2024-02-01"]) == 1
    assert "no registered model" in capsys.readouterr().err
    monkeypatch.setenv("HOOPFLOW_THRESHOLDS__MODELS__MAX_TIER_BIAS__UNDER_5", "0.01")
    monkeypatch.setenv("HOOPFLOW_THRESHOLDS__MODELS__MIN_TIER_ROWS", "1")
    reset_settings()
    assert cli.main(["train", "--start", str(ML_START), "--end", str(ML_END)]) == 1
    captured = capsys.readouterr()
    assert "model REFUSED" in captured.out and "tier < 5 bias" in captured.out  # the table and the reason
    assert "FAILED:" in captured.err and "ModelRejected: model REFUSED" in captured.err
    assert "beyond ±0.01" in captured.err


def test_bad_train_dates_are_a_usage_error(cli_env, capsys):
    assert cli.main(["train", "--start", "2024-02-01", "--end", "2024-01-01"]) == 2
    assert cli.main(["train", "--start", "2024-01-01", "--end", "2024-02-01", "--test-from", "2024-03-01"]) == 2
    err = capsys.readouterr().err
    assert "--start 2024-02-01 is after --end 2024-01-01" in err
    assert "--test-from 2024-03-01 must be after --start 2024-01-01 and not after --end 2024-02-01" in err
    assert cli.main(["grade", "--start", "2024-02-02", "--end", "2024-02-01"]) == 2
