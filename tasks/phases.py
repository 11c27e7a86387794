"""The phases, in pipeline order: a phase reads what the phases before it wrote. Each is
declared once, beside its formulas (tasks/raw.py, tasks/reconcile.py, tasks/analytics.py,
tasks/precompute.py);
the lookups below, the flows, the plans, validation's and setup's table lists and the direct
runner are all derived from these declarations."""

from __future__ import annotations

from datetime import date

from blocks.warehouse import TableSpec
from engine.checks import VALIDATION_RESULTS
from engine.ledger import RUN_LEDGER
from engine.phase_run import run_phase_directly
from engine.processors import Phase, Processor, registry
from engine.runner import PhaseResult
from tasks.analytics import ANALYTICS
from tasks.precompute import PRECOMPUTE
from tasks.raw import RAW
from tasks.reconcile import RECONCILE

PHASES: tuple[Phase, ...] = (RAW, RECONCILE, ANALYTICS, PRECOMPUTE)
PHASE_NAMES = tuple(p.name for p in PHASES)
PHASE: dict[str, Phase] = {p.name: p for p in PHASES}
PROCESSORS: dict[str, Processor] = registry(PHASES)

PHASE_TABLES: dict[str, tuple[TableSpec, ...]] = {p.name: p.tables for p in PHASES}
DATA_TABLES: tuple[TableSpec, ...] = tuple(spec for p in PHASES for spec in p.tables)
TABLES: dict[str, TableSpec] = {spec.name: spec for spec in DATA_TABLES}
TABLE_PHASE: dict[str, str] = {spec.name: p.name for p in PHASES for spec in p.tables}
# Every table a run may touch: the ledger, validation results, each phase's tables.
ALL_TABLES: tuple[TableSpec, ...] = (RUN_LEDGER, VALIDATION_RESULTS, *DATA_TABLES)
# The processor whose success makes a table's partition for a date (one name for both).
TABLE_PROCESSORS: dict[str, tuple[str, ...]] = {name: (name,) for name in TABLES}


def processable(phase: str, dates: list[date]) -> list[date]:
    """The dates a phase writes among the game dates (precompute: not a season's first 14 days)."""
    return PHASE[phase].processable(dates)


def run_directly(phases: list[str], dates: list[date]) -> dict[str, int]:
    """Every phase over every date, phase after phase, without Prefect (no cache, no
    validation): `make bench` measures the orchestration against it, fixtures build with it."""
    from blocks.settings import get_settings

    get_settings().warehouse_block().ensure_tables([RUN_LEDGER, *DATA_TABLES])
    rows: dict[str, int] = {}
    for name in phases:
        result: PhaseResult = run_phase_directly(PHASE[name], PHASES, dates)
        for table, n in result.rows.items():
            rows[table] = rows.get(table, 0) + n
        if result.failed:
            first = next(iter(result.failed.items()))
            raise RuntimeError(f"{name}: {len(result.failed)} dates failed, first {first[0]}: {first[1]}")
    return rows
