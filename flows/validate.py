"""Validation of one phase over a date range: every table's checks (in parallel), one
`nba_ops.validation_results` row per check, a markdown report and a table of failures as
artifacts. A failed critical check fails the run (the report travels with the exception)."""

from __future__ import annotations

from datetime import date

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from tasks.phases import PHASE_NAMES, PHASE_TABLES
from tasks.validate import (
    ValidationFailed,
    ValidationReport,
    all_thresholds,
    ensure_validation_tables,
    record_validation,
    validate_table,
    validation_scopes,
)


@flow(name="validate", flow_run_name="validate-{phase}-{start}-{end}")
def validate(
    phase: str,
    start: date,
    end: date,
    dates: list[date] | None = None,
    fail_on_critical: bool = True,
) -> ValidationReport:
    """Check the phase's tables over [start, end], or on each of `dates` (a sample run's).
    Fails when a critical check fails, unless `fail_on_critical` is False."""
    if phase not in PHASE_NAMES:
        raise ValueError(f"unknown phase {phase!r}; known: {', '.join(PHASE_NAMES)}")
    if start > end:
        raise ValueError(f"start {start} is after end {end}")
    thresholds = all_thresholds()  # a bad thresholds file fails here, before any check
    ensure_validation_tables()
    scopes = validation_scopes(phase, start, end, dates)
    futures = [
        validate_table.submit(spec.name, scope, thresholds[spec.name])
        for scope in scopes
        for spec in PHASE_TABLES[phase]
    ]
    results = [r for f in futures for r in f.result()]
    report = ValidationReport(phase, start, end, sum(len(s.dates) for s in scopes), results, dates)
    record_validation(report)
    create_markdown_artifact(
        report.to_markdown(), key=f"validation-{phase}", description=report.summary()[:500]
    )
    if report.failures():
        create_table_artifact(
            report.failures(), key=f"validation-failures-{phase}",
            description=f"Failed {phase} checks, {start} → {end}",
        )  # fmt: skip
    get_run_logger().info(report.summary())
    if fail_on_critical and report.blocking:
        raise ValidationFailed(report)
    return report
