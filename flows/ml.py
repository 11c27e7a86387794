"""The ML phase. `train`: a points model from the feature store, judged on later dates against
the last-10 and season-average baselines and registered only when the gate lets it through.
`predict`: a range of dates with the latest registered model. `grade`: those predictions
against the box scores. `ml` (the backfill's phase): train, then predict and grade its test dates."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.runtime import flow_run

from tasks.ml import (
    DatesFailed,
    DatesReport,
    MLResult,
    ModelRejected,
    TrainingReport,
    ensure_ml_tables,
    grade_date,
    graded_summary,
    judge,
    latest_model,
    ml_dates,
    model_gate,
    outcome_of,
    predict_date,
    register_model,
    train_model,
)


@flow(name="train", flow_run_name="train-{start}-{end}")
def train(start: date, end: date, test_from: date | None = None) -> TrainingReport:
    """Train on [start, end]'s feature store (test dates: from `test_from`, or the last fifth).
    Registers the model only when the gate passes; otherwise fails with the numbers."""
    gate = model_gate()  # a bad thresholds file fails here, before any training
    ensure_ml_tables()
    trained = train_model(start, end, test_from)
    report = trained.report
    report.decision = judge(report.metrics, report.rows, gate)
    if report.decision.passed:
        report = register_model(trained)
    create_markdown_artifact(report.to_markdown(trained.plot), key="ml-model", description=report.summary()[:500])
    create_table_artifact(
        report.metric_rows(), key="ml-metrics",
        description=f"Model vs baselines on the test dates {report.split.test[0]} → {report.split.test[-1]}",
    )  # fmt: skip
    get_run_logger().info(report.summary())
    if not report.decision.passed:
        raise ModelRejected(report)
    return report


def _run_name(kind: str) -> Callable[[], str]:
    """`predict-2024-02-01` for one date, `predict-2024-02-01-2024-04-14` for a range."""

    def name() -> str:
        start, end = flow_run.parameters["start"], flow_run.parameters.get("end")
        return f"{kind}-{start}" if end is None or str(end) == str(start) else f"{kind}-{start}-{end}"

    return name


@flow(name="predict", flow_run_name=_run_name("predict"))
def predict(start: date, end: date | None = None) -> DatesReport:
    """Predict every game date in [start, end] (one date without `end`) with the latest
    registered model; a failed date does not stop the others, and fails the run at the end."""
    ensure_ml_tables()
    model = latest_model()
    dates = ml_dates(start, end or start)
    futures = [predict_date.submit(d, model.version, model.model_path) for d in dates]
    report = DatesReport("predict", start, end or start, _outcomes(dates, futures), model.version)
    return _finish(report, "ml-predictions")


@flow(name="grade", flow_run_name=_run_name("grade"))
def grade(start: date, end: date | None = None) -> DatesReport:
    """Grade the predictions of every game date in [start, end] against its box score; a date
    whose games are not in yet stays ungraded (not a failure)."""
    ensure_ml_tables()
    dates = ml_dates(start, end or start)
    futures = [grade_date.submit(d) for d in dates]
    report = DatesReport("grade", start, end or start, _outcomes(dates, futures))
    report.summary_numbers = graded_summary(start, end or start)
    return _finish(report, "ml-grades")


@flow(name="ml", flow_run_name="ml-{start}-{end}")
def ml(start: date, end: date, test_from: date | None = None) -> MLResult:
    """The backfill's ml phase: train on [start, end] (ModelRejected when the gate refuses),
    then predict and grade the model's test dates."""
    report = train(start, end, test_from)
    first, last = report.split.test[0], report.split.test[-1]
    predicted = predict(first, last)
    graded = grade(first, last)
    return MLResult(
        model_version=report.version, feature_version=report.feature_version, metrics=report.metrics,
        dates_predicted=predicted.done, dates_graded=graded.done, graded=graded.summary_numbers,
        training=report,
    )  # fmt: skip


def _outcomes(dates: list[date], futures: list) -> list:
    for f in futures:
        f.wait()
    return [outcome_of(d, f.state) for d, f in zip(dates, futures, strict=True)]


def _finish(report: DatesReport, key: str) -> DatesReport:
    create_table_artifact(report.table(), key=key, description=report.headline()[:500])
    get_run_logger().info(report.headline())
    if report.failed:
        raise DatesFailed(report)
    return report
