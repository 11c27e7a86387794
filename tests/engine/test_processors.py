"""The declarations and what is derived from them: the tasks, the table lists, the checks a
phase declaration gets, and code versions that follow a processor's own code only."""

from __future__ import annotations

import importlib.util
import shutil
import sys
import uuid
from pathlib import Path

import pytest

from blocks.settings import REPO_ROOT
from engine.phase_run import processor_task
from engine.processors import Phase, Processor, Read
from tasks.analytics import PLAYER_GAME_SUMMARY, TEAM_OFFENSE
from tasks.phases import ALL_TABLES, DATA_TABLES, PHASE_TABLES, PHASES, PROCESSORS, TABLE_PROCESSORS


def test_each_processor_has_one_name_for_table_task_and_ledger():
    for phase in PHASES:
        for p in phase.processors:
            task = processor_task(p)
            assert p.name == p.table.name == task.name
            assert task.task_run_name == p.name.replace("_", "-") + "-{game_date}"
            assert TABLE_PROCESSORS[p.table.name] == (p.name,)
    assert {phase: [t.id for t in tables] for phase, tables in PHASE_TABLES.items()} == {
        "raw": ["nba_raw.schedule", "nba_raw.player_boxscores", "nba_raw.shots", "nba_raw.espn_team_boxscores"],
        "reconcile": ["nba_ops.provider_games", "nba_ops.discrepancies", "nba_ops.game_quality"],
        "analytics": ["nba_analytics.team_offense_game_summary", "nba_analytics.team_defense_game_summary",
                      "nba_analytics.player_game_summary", "nba_analytics.player_game_context"],
        "precompute": ["nba_precompute.team_defense_zone_analysis", "nba_precompute.player_shot_zone_analysis",
                       "nba_precompute.player_daily_cache", "nba_precompute.player_composite_factors",
                       "nba_precompute.ml_feature_store"],
    }  # fmt: skip
    assert {s.id for s in ALL_TABLES} == {t.id for t in DATA_TABLES} | {"nba_ops.run_ledger", "nba_ops.validation_results"}
    assert len(ALL_TABLES) == len(DATA_TABLES) + 2
    # Every SQL file beside the phases is run by a processor (and so part of its version).
    assert {path.name for p in PROCESSORS.values() for path in p.sql} == {
        f.name for f in (REPO_ROOT / "tasks" / "sql").glob("*.sql")}


def test_pipeline_order_inside_analytics_and_precompute():
    names = {ph.name: [p.name for p in ph.processors] for ph in PHASES}
    assert names["analytics"].index("player_game_summary") > names["analytics"].index("team_offense_game_summary")
    assert names["analytics"][-1] == "player_game_context"
    assert names["precompute"][-1] == "ml_feature_store"
    # Every read names a declared processor of this or an earlier phase.
    seen: set[str] = set()
    for ph in PHASES:
        own = {p.name for p in ph.processors}
        for p in ph.processors:
            assert all(r.processor in seen | own for r in p.reads), p.name
        seen |= own


def test_a_declaration_that_breaks_the_rules_is_refused():
    def compute(run):
        raise AssertionError

    with pytest.raises(ValueError, match="one name for both"):
        Processor("summary", PLAYER_GAME_SUMMARY, compute)
    offense = Processor(TEAM_OFFENSE.name, TEAM_OFFENSE, compute)
    reads_offense = Processor(PLAYER_GAME_SUMMARY.name, PLAYER_GAME_SUMMARY, compute, reads=(Read(TEAM_OFFENSE.name),))
    with pytest.raises(ValueError, match="of its own phase"):
        Phase("x", (offense, reads_offense))
    with pytest.raises(ValueError, match="not an earlier processor"):
        Phase("x", (Processor(PLAYER_GAME_SUMMARY.name, PLAYER_GAME_SUMMARY, compute, after=(TEAM_OFFENSE.name,)),))
    with pytest.raises(ValueError, match="unknown window"):
        Processor(TEAM_OFFENSE.name, TEAM_OFFENSE, compute, reads=(Read("schedule", "month"),))  # type: ignore[arg-type]


def _versions(tmp_path: Path, edit=lambda s: s, module: str = "analytics") -> dict[str, str]:
    """The processors' versions of a copy of tasks/<module>.py, after `edit`."""
    source = edit((REPO_ROOT / "tasks" / f"{module}.py").read_text())
    name = f"tasks.probe_{uuid.uuid4().hex[:8]}"
    path = tmp_path / f"{name.split('.')[1]}.py"
    path.write_text(source)
    if not (tmp_path / "sql").exists():  # the SQL beside it (a test may then edit the copy)
        shutil.copytree(REPO_ROOT / "tasks" / "sql", tmp_path / "sql")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    phase = module.ANALYTICS if hasattr(module, "ANALYTICS") else module.PRECOMPUTE
    return {p.name: p.version for p in phase.processors}


def _replace(old: str, new: str):
    def edit(source: str) -> str:
        assert old in source, old
        return source.replace(old, new)

    return edit


def test_code_versions_follow_the_compute_code_not_the_module_file(tmp_path):
    base = _versions(tmp_path)
    assert base == _versions(tmp_path)  # deterministic
    assert len(set(base.values())) == len(base)  # each processor its own version
    # A docstring, a comment, a table description: nothing any formula computes.
    assert _versions(tmp_path, _replace('"""Rest and load of each player', '"""Rest, load of each player')) == base
    assert _versions(tmp_path, _replace("One row per team per game: the team's offence.", "Team offence.")) == base
    assert _versions(tmp_path, _replace("def possessions(", "# why possessions\ndef possessions(")) == base
    # The pandas formulas are the SQL's reference (held equal by the tests), not what runs.
    assert _versions(tmp_path, _replace("return fga + 0.44 * fta - oreb + tov", "return fga + 0.45 * fta - oreb + tov")) == base
    # Python a processor runs is part of its version: the days of its windows here.
    changed = _versions(tmp_path, _replace("since_7=d - timedelta(days=7)", "since_7=d - timedelta(days=6)"))
    assert changed["player_game_context"] != base["player_game_context"]
    assert {k: v for k, v in changed.items() if k != "player_game_context"} == {
        k: v for k, v in base.items() if k != "player_game_context"}
    # The SQL a processor runs is part of its version: possessions feed the team offence,
    # and the processors reading that table are chained to it by their inputs, not their code.
    sql = tmp_path / "sql" / "team_offense_game_summary.sql"
    sql.write_text(sql.read_text().replace("0.44e0 * b.fta", "0.45e0 * b.fta", 1))
    edited = _versions(tmp_path)
    assert edited["team_offense_game_summary"] != base["team_offense_game_summary"]
    assert {k: v for k, v in edited.items() if k != "team_offense_game_summary"} == {
        k: v for k, v in base.items() if k != "team_offense_game_summary"}


def test_a_constant_a_processor_uses_is_part_of_its_version(tmp_path):
    base = _versions(tmp_path, module="precompute")
    fewer = _versions(tmp_path, _replace("CACHE_MIN_GAMES = 3", "CACHE_MIN_GAMES = 4"), module="precompute")
    assert fewer["player_daily_cache"] != base["player_daily_cache"]
    assert {k: v for k, v in fewer.items() if k != "player_daily_cache"} == {
        k: v for k, v in base.items() if k != "player_daily_cache"}



def test_a_transient_failure_with_a_retry_to_come_is_recorded_as_retrying(prefect_api):
    """A run killed while a task waits out its retry must leave the date missing (a plain rerun
    runs it), not failed (a plain rerun would skip it)."""
    from prefect import flow, task

    from blocks.sources import TransientSourceError
    from engine.processors import _failed_status

    def statuses() -> list[str]:
        return [_failed_status(TransientSourceError("HTTP 503")), _failed_status(ValueError("bad row"))]

    @flow
    def run() -> tuple[list[str], list[str]]:
        return task(retries=2)(statuses)(), task(statuses)()

    with_retries, without = run()
    assert with_retries == ["retrying", "failed"]  # bad data is never retried
    assert without == ["failed", "failed"]
    assert _failed_status(TransientSourceError("HTTP 503")) == "failed"  # outside a task: no retry to come
