"""The nightly run: one game date (default: yesterday in America/New_York) through raw,
reconcile, analytics and precompute, each phase validated before the next (a critical
reconciliation finding stops it before analytics), and the day's report as an
artifact. A day without games ends Completed with a note; a second run finds every phase
current and does nothing but validate and report."""

from __future__ import annotations

from datetime import date

from prefect import flow, get_run_logger, runtime
from prefect.artifacts import create_markdown_artifact

from blocks.settings import get_settings
from engine.daily import DailyReport, day_tables, default_game_date
from engine.locks import ensure_write_locks
from engine.runner import PhaseRunner, Progress
from flows.analytics import analytics
from flows.precompute import precompute
from flows.raw import raw
from flows.reconcile import reconcile
from flows.validate import validate
from tasks.phases import ALL_TABLES, PHASES, TABLES, processable
from tasks.validate import report_of

PHASE_FLOWS = {"raw": raw, "reconcile": reconcile, "analytics": analytics, "precompute": precompute}


class DailyFailed(RuntimeError):
    def __init__(self, report: DailyReport):
        super().__init__(report.headline())
        self.report = report

    def __reduce__(self):
        return (DailyFailed, (self.report,))


def _run_name() -> str:
    game_date = runtime.flow_run.parameters.get("game_date")
    return f"daily-{game_date or default_game_date()}"


@flow(name="daily", flow_run_name=_run_name)
def daily(game_date: date | None = None) -> DailyReport:
    """Ingest, reconcile, transform, precompute and validate one game date; publish the day's report."""
    game_date = game_date or default_game_date()
    logger, settings = get_run_logger(), get_settings()
    warehouse = settings.warehouse_block()
    report = DailyReport(game_date, scheduled=bool(settings.source_block().game_dates(game_date, game_date)))
    try:
        if not report.scheduled:
            report.notes.append(f"No games on {game_date}: nothing to ingest.")
            logger.info(report.notes[-1])
            return report
        warehouse.ensure_tables(ALL_TABLES)
        if settings.write_locks:
            ensure_write_locks()
        phases = list(PHASE_FLOWS)
        runner = PhaseRunner(PHASE_FLOWS, PHASES, "none", Progress(2 * len(phases), key="daily-progress"), logger)
        for phase in phases:
            if not processable(phase, [game_date]):
                report.notes.append(f"{phase}: {game_date} is inside the season's first days (bootstrap): nothing to write.")
                continue
            result = runner.run(phase, [game_date], "daily")
            report.phases.append(result)
            if result.failed:
                break  # the later phases read this one's tables
            state = validate(phase, game_date, game_date, return_state=True)
            result.validation, result.validation_message = report_of(state), state.message
            if result.validation is None or result.validation.blocking:
                report.stopped_by = result.gate_message()
                break
        if report.failed:
            report.games = len(day_tables(warehouse, game_date, TABLES)[0])  # the failure's message counts them
            raise DailyFailed(report)
        return report
    finally:
        games, scorers = day_tables(warehouse, game_date, TABLES)
        report.games = len(games)
        create_markdown_artifact(report.to_markdown(games, scorers), key="daily-report", description=report.headline())
