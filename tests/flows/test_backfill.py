"""The gated backfill end to end (real temporary Prefect API, DuckDB file, landing folder):
gates that stop it, reprocess modes, an interrupted run that resumes, dry runs, samples and
the artifacts it leaves. Expected counts come from pandas over the bundled CSVs."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import date

import pandas as pd
import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterKey,
    FlowRunFilter,
    FlowRunFilterParentFlowRunId,
)
from prefect.settings import PREFECT_API_URL

from flows.backfill import backfill
from blocks.settings import REPO_ROOT, get_settings, reset_settings
from engine.ledger import RUN_LEDGER
from engine.runner import BackfillFailed
from tests.conftest import ML_END, ML_START, copy_season, use_source

pytestmark = pytest.mark.e2e

DATES = ["2023-11-10", "2023-11-11", "2023-11-12"]
START, END = date(2023, 11, 10), date(2023, 11, 12)
RAW_PROCESSORS = ("schedule", "player_boxscores", "shots", "espn_team_boxscores")  # ledger names = table names


def _count(wh, sql: str, params=None) -> int:
    return int(wh.query(sql, params or {}).iloc[0, 0])


def _ledger(wh) -> pd.DataFrame:
    df = wh.query("SELECT processor, game_date, status FROM nba_ops.run_ledger ORDER BY started_at")
    df["game_date"] = pd.to_datetime(df.game_date).dt.strftime("%Y-%m-%d")
    return df


def _analytics_untouched(wh) -> None:
    for table in ("team_offense_game_summary", "team_defense_game_summary", "player_game_summary",
                  "player_game_context"):  # fmt: skip
        assert _count(wh, f"SELECT count(*) FROM nba_analytics.{table}") == 0, table
    assert not _ledger(wh).processor.isin(["player_game_summary", "team_offense_game_summary"]).any()


def _artifact(key: str):
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
    return max(found, key=lambda a: a.created)


# ---------------------------------------------------------------- gates


def test_an_impossible_threshold_stops_the_backfill_after_raw(prefect_api, hoopflow_home, tmp_path, monkeypatch):
    # A copy of the shipped thresholds, with a limit no real box score meets.
    shipped = yaml.safe_load((REPO_ROOT / "config" / "thresholds.yaml").read_text())
    shipped["player_boxscores"]["ranges"]["pts"]["max"] = 20
    path = tmp_path / "thresholds.yaml"
    path.write_text(yaml.safe_dump(shipped))
    monkeypatch.setenv("HOOPFLOW_THRESHOLDS_FILE", str(path))
    reset_settings()

    state = backfill(START, END, ["raw", "analytics"], return_state=True)
    assert state.is_failed()
    assert "stopped after raw (full): nba_raw.player_boxscores impossible_values" in state.message
    wh = get_settings().warehouse_block()
    assert _count(wh, "SELECT count(*) FROM nba_raw.player_boxscores") > 0  # raw ran
    _analytics_untouched(wh)  # analytics never started
    failed = wh.query("SELECT table_id, check_name FROM nba_ops.validation_results WHERE NOT passed")
    assert list(zip(failed.table_id, failed.check_name)) == [("nba_raw.player_boxscores", "impossible_values")]


def test_a_corrupted_raw_partition_stops_the_backfill_naming_check_and_date(
    prefect_api, hoopflow_home, tmp_path, monkeypatch
):
    # A box score whose points no longer add up to the final score: it parses and loads, only
    # validation can see it.
    folder = copy_season(tmp_path, DATES)
    box = pd.read_csv(folder / "player_box.csv.gz", dtype=str, keep_default_na=False)
    row = box.index[box.GAME_DATE == "2023-11-11"][0]
    box.loc[row, "PTS"] = str(int(box.loc[row, "PTS"]) + 2)
    box.to_csv(folder / "player_box.csv.gz", index=False)
    use_source(monkeypatch, folder)

    state = backfill(START, END, ["raw", "analytics"], return_state=True)
    assert state.is_failed()
    assert "points_sum_to_final_score" in state.message
    assert "first offending rows on 2023-11-11" in state.message
    _analytics_untouched(get_settings().warehouse_block())
    report = _artifact("backfill-report").data
    assert "stopped after raw" in report and "points_sum_to_final_score" in report


# ---------------------------------------------------------------- reprocess


def test_reprocess_failed_reruns_only_the_failed_date(prefect_api, hoopflow_home, tmp_path, monkeypatch):
    folder = copy_season(tmp_path, DATES)
    shots = pd.read_csv(folder / "shots.csv.gz", dtype=str, keep_default_na=False)
    good = shots.copy()
    shots.loc[shots.GAME_DATE == "2023-11-11", "SHOT_DISTANCE"] = "far"
    shots.to_csv(folder / "shots.csv.gz", index=False)
    use_source(monkeypatch, folder)
    assert backfill(START, END, ["raw"], return_state=True).is_failed()
    wh = get_settings().warehouse_block()
    first = len(_ledger(wh))

    good.to_csv(folder / "shots.csv.gz", index=False)  # the source is fixed
    # reprocess=none leaves a failed date alone (and the gate still sees it missing).
    state = backfill(START, END, ["raw"], reprocess="none", return_state=True)
    assert state.is_failed() and "nba_raw.shots coverage" in state.message
    assert len(_ledger(wh)) == first
    said = state.result(raise_on_failure=False).report.to_text()
    assert "raw: 1 dates whose last run failed were not run again (2023-11-11): rerun with --reprocess failed" in said

    assert backfill(START, END, ["raw"], reprocess="failed", return_state=True).is_completed()
    new = _ledger(wh).iloc[first:]
    assert set(new.game_date) == {"2023-11-11"}  # only the failed date ran again
    assert set(new.processor) == {"shots"}  # the schedule and box scores: current, cached
    assert (new.status == "succeeded").all()


def test_reprocess_all_reruns_every_date_bypassing_the_cache(prefect_api, hoopflow_home, tmp_path, monkeypatch):
    use_source(monkeypatch, copy_season(tmp_path, DATES[:2]))
    assert backfill(START, END, ["raw"], return_state=True).is_completed()
    wh = get_settings().warehouse_block()
    first = len(_ledger(wh))
    assert backfill(START, END, ["raw"], return_state=True).is_completed()
    assert len(_ledger(wh)) == first  # all current: nothing ran
    assert backfill(START, END, ["raw"], reprocess="all", return_state=True).is_completed()
    new = _ledger(wh).iloc[first:]
    assert sorted(zip(new.processor, new.game_date)) == sorted(
        (p, d) for p in RAW_PROCESSORS for d in DATES[:2]
    )
    assert _count(wh, "SELECT count(*) FROM (SELECT game_id, player_id FROM nba_raw.player_boxscores "
                      "GROUP BY 1, 2 HAVING count(*) > 1)") == 0  # fmt: skip


# ---------------------------------------------------------------- the warehouse is the truth


def _pandas_rows(season_csv, dates: list[str]) -> dict[str, int]:
    """What a raw + analytics backfill of `dates` must leave, from pandas over the CSVs."""
    box, shots = season_csv["player_box"], season_csv["shots"]
    return {
        "nba_raw.player_boxscores": int(box.GAME_DATE.isin(dates).sum()),
        "nba_raw.shots": int(shots.GAME_DATE.isin(dates).sum()),
        "nba_analytics.player_game_summary": int(box.GAME_DATE.isin(dates).sum()),
    }


def _held(wh) -> dict[str, int]:
    return {t: _count(wh, f"SELECT count(*) FROM {t}") for t in
            ("nba_raw.player_boxscores", "nba_raw.shots", "nba_analytics.player_game_summary")}  # fmt: skip


@pytest.mark.parametrize("loss", ["deleted file", "restored older copy", "dropped tables"])
def test_a_lost_warehouse_is_rebuilt_by_a_plain_rerun(loss, prefect_api, hoopflow_home, tmp_path, monkeypatch,
                                                      season_csv):  # fmt: skip
    # The Prefect results storage (hoopflow_home/results) is kept throughout: a task cache
    # must not answer for what the warehouse no longer holds.
    use_source(monkeypatch, copy_season(tmp_path, DATES))
    file = hoopflow_home / "warehouse.duckdb"
    wh = get_settings().warehouse_block()
    if loss == "restored older copy":  # a backup taken after the first two dates
        assert backfill(START, date(2023, 11, 11), ["raw", "analytics"], return_state=True).is_completed()
        wh.query("CHECKPOINT")
        wh.release()
        shutil.copy(file, tmp_path / "backup.duckdb")
    assert backfill(START, END, ["raw", "analytics"], return_state=True).is_completed()
    assert _held(wh) == _pandas_rows(season_csv, DATES)
    wh.release()
    if loss == "deleted file":
        for f in hoopflow_home.glob("warehouse.duckdb*"):
            f.unlink()
    elif loss == "restored older copy":
        for f in hoopflow_home.glob("warehouse.duckdb*"):
            f.unlink()
        shutil.copy(tmp_path / "backup.duckdb", file)
        assert _held(wh) == _pandas_rows(season_csv, DATES[:2])  # the backup lacks the last date
    else:
        wh.query("DROP TABLE nba_raw.shots")
        wh.query("DROP TABLE nba_analytics.player_game_summary")
    before = len(_ledger(wh)) if wh.has_table(RUN_LEDGER) else 0

    state = backfill(START, END, ["raw", "analytics"], return_state=True)  # the same command again
    assert state.is_completed(), state.message
    assert _held(wh) == _pandas_rows(season_csv, DATES)
    ran = _ledger(wh).iloc[before:]
    assert (ran.status == "succeeded").all()
    if loss == "restored older copy":  # what the backup holds stays; the lost date runs again
        assert set(ran.game_date) == {"2023-11-12"}
    if loss == "dropped tables":  # exactly the dropped tables' processors ran again, every date
        assert sorted(zip(ran.processor, ran.game_date)) == sorted(
            (p, d) for p in ("shots", "player_game_summary") for d in DATES
        )


def test_transient_faults_in_every_source_call_are_retried(prefect_api, hoopflow_home, tmp_path, monkeypatch,
                                                           season_csv, caplog):  # fmt: skip
    # A tenth of the schedule, season-start and fingerprint calls fail (seeded) wherever they
    # are made: the backfill's and the phases' planning, validation's scopes, the status grid.
    from blocks.sources import reset_injected_faults

    use_source(monkeypatch, copy_season(tmp_path, DATES))
    monkeypatch.setenv("HOOPFLOW_SOURCE_FAULT_RATE", "0.1")
    monkeypatch.setenv("HOOPFLOW_SOURCE_FAULT_SEED", "7")
    monkeypatch.setenv("HOOPFLOW_SOURCE_FAULT_CALLS", "game_dates,season_start,fingerprint")
    reset_settings()
    reset_injected_faults()
    with caplog.at_level("WARNING"):
        state = backfill(START, END, ["raw", "analytics"], return_state=True)
    assert state.is_completed(), state.message
    assert _held(get_settings().warehouse_block()) == _pandas_rows(season_csv, DATES)
    retries = [r.getMessage() for r in caplog.records if "injected transient fault" in r.getMessage()
               and "; retry " in r.getMessage()]  # fmt: skip
    assert retries, "no source call failed: the seed injects no fault here"
    assert {m.split("(")[0].split(": ")[-1] for m in retries} <= {"game_dates", "season_start", "fingerprint"}


# ---------------------------------------------------------------- interrupted, resumed


def test_a_killed_run_resumes_without_duplicates_or_lost_dates(prefect_api, hoopflow_home, season_csv):
    start, end = date(2023, 10, 24), date(2023, 11, 3)
    env = {
        **os.environ,
        "HOOPFLOW_HOME": str(hoopflow_home),
        "PREFECT_API_URL": PREFECT_API_URL.value(),  # the test's temporary API
        "PREFECT_LOCAL_STORAGE_PATH": str(hoopflow_home / "results"),
        "PYTHONPATH": str(REPO_ROOT),
    }
    child = subprocess.Popen(
        [sys.executable, "-c", f"from datetime import date; from flows.backfill import backfill; "
         f"backfill(date.fromisoformat('{start}'), date.fromisoformat('{end}'), ['raw', 'analytics'])"],
        env=env, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    # Kill it hard in the middle of the raw phase: after some dates have landed.
    landed = hoopflow_home / "landing" / "shots"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(landed.glob("*.csv"))) < 4:
        assert child.poll() is None, "the backfill ended before it could be interrupted"
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    box = season_csv["player_box"]
    in_range = box[box.GAME_DATE.between(str(start), str(end))]
    assert len(list(landed.glob("*.csv"))) < in_range.GAME_DATE.nunique()  # it really stopped mid-phase

    reset_settings()
    wh = get_settings().warehouse_block()
    before = _ledger(wh)
    ok = before[before.status == "succeeded"]
    # A date is loaded when each raw processor (one per table) succeeded on it.
    done_before = {d for d, runs in ok.groupby("game_date") if set(runs.processor) >= set(RAW_PROCESSORS)}
    assert done_before  # some dates were loaded before the kill

    state = backfill(start, end, ["raw", "analytics"], return_state=True)
    assert state.is_completed(), state.message  # the gates include duplicate keys and coverage
    after = _ledger(wh).iloc[len(before):]
    # Dates loaded before the kill were not loaded again; every other date was.
    assert set(after[after.processor.isin(RAW_PROCESSORS)].game_date).isdisjoint(done_before)
    assert set(after[after.processor.isin(RAW_PROCESSORS)].game_date) == set(in_range.GAME_DATE) - done_before
    assert _count(wh, "SELECT count(*) FROM nba_raw.player_boxscores") == len(in_range)
    assert _count(wh, "SELECT count(*) FROM nba_analytics.player_game_summary") == len(in_range)
    assert _count(wh, "SELECT count(DISTINCT game_date) FROM nba_analytics.player_game_context") == (
        in_range.GAME_DATE.nunique()
    )


# ---------------------------------------------------------------- dry run, sample, artifacts


def test_dry_run_writes_nothing(prefect_api, hoopflow_home, tmp_path, monkeypatch):
    use_source(monkeypatch, copy_season(tmp_path, DATES))
    report = backfill(START, END, ["raw", "analytics"], dry_run=True)
    assert not (hoopflow_home / "warehouse.duckdb").exists()  # not even an empty database
    assert not (hoopflow_home / "landing").exists()
    raw_plan, analytics_plan = report.plans
    assert (len(raw_plan.to_run), len(analytics_plan.to_run)) == (3, 3)
    assert analytics_plan.inputs_missing == []  # raw runs first in the same backfill

    assert backfill(date(2023, 11, 10), date(2023, 11, 11), ["raw"], return_state=True).is_completed()
    wh = get_settings().warehouse_block()
    ledger = len(_ledger(wh))
    # raw is not loaded on 2023-11-12: the dry run says so, and ends failed as the run would.
    state = backfill(START, END, ["analytics"], dry_run=True, return_state=True)
    assert state.is_failed()
    error = state.result(raise_on_failure=False)
    assert isinstance(error, BackfillFailed)
    report = error.report
    (plan,) = report.plans
    assert plan.to_run == [date(2023, 11, 10), date(2023, 11, 11), date(2023, 11, 12)]
    assert plan.inputs_missing == [date(2023, 11, 12)]
    assert "(2023-11-12 → 2023-11-12)" in report.stopped_by
    assert "`hoopflow backfill --start 2023-11-12 --end 2023-11-12 --phases raw`" in report.stopped_by
    assert len(_ledger(wh)) == ledger
    assert _count(wh, "SELECT count(*) FROM nba_analytics.player_game_summary") == 0
    assert "inputs missing" in _artifact("backfill-report").data


# ---------------------------------------------------------------- a range that starts mid-season

MID_START, MID_END = date(2023, 11, 1), date(2023, 11, 20)
SEASON_START = date(2023, 10, 24)  # the bundled season's first game date


def _game_dates(season_csv, start: date, end: date) -> list[date]:
    days = season_csv["schedule"].GAME_DATE
    return sorted({date.fromisoformat(d) for d in days[days.between(str(start), str(end))]})


def _children(state) -> list[str]:
    """The names of the subflow runs of a backfill run."""
    parent = FlowRunFilterParentFlowRunId(any_=[state.state_details.flow_run_id])
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(parent_flow_run_id=parent))
    return sorted(r.name for r in runs)


def test_a_mid_season_range_runs_raw_from_the_seasons_first_date(prefect_api, hoopflow_home, season_csv):
    state = backfill(MID_START, MID_END, ["raw", "analytics"], return_state=True)
    assert state.is_completed(), state.message  # no analytics date failed for missing history
    report = state.result()
    raw_dates = _game_dates(season_csv, SEASON_START, MID_END)
    range_dates = _game_dates(season_csv, MID_START, MID_END)
    assert raw_dates[0] == SEASON_START and range_dates[0] > SEASON_START
    assert [(r.phase, r.stage, r.ran, r.failed) for r in report.results] == [
        ("raw", "full", raw_dates, {}),  # from the season's first date: analytics reads it
        ("analytics", "full", range_dates, {}),
    ]
    # One phase subflow per chunk of at most 30 calendar days (here 28 days: one chunk each),
    # then the phase's validation over what it ran.
    assert (raw_dates[-1] - raw_dates[0]).days < 30
    assert _children(state) == sorted([
        f"raw-{raw_dates[0]}-{raw_dates[-1]}", f"analytics-{range_dates[0]}-{range_dates[-1]}",
        f"validate-raw-{SEASON_START}-{MID_END}", f"validate-analytics-{MID_START}-{MID_END}",
    ])  # fmt: skip

    wh = get_settings().warehouse_block()
    box = season_csv["player_box"]
    season = box[box.GAME_DATE.between(str(SEASON_START), str(MID_END))]
    in_range = season[season.GAME_DATE >= str(MID_START)]
    assert _count(wh, "SELECT count(*) FROM nba_raw.player_boxscores") == len(season)
    assert _count(wh, "SELECT count(*) FROM nba_analytics.player_game_summary") == len(in_range)
    context = wh.query("SELECT game_date, days_rest FROM nba_analytics.player_game_context")
    assert sorted(set(pd.to_datetime(context.game_date).dt.date)) == range_dates  # the range only
    # days_rest is NULL only on a player's first game of the season, counted over the whole
    # season's CSV: the history before the range was read.
    first_games = season.sort_values("GAME_DATE").drop_duplicates("PLAYER_ID")
    assert int(context.days_rest.isna().sum()) == int((first_games.GAME_DATE >= str(MID_START)).sum())
    assert int(context.days_rest.isna().sum()) < len(set(in_range.PLAYER_ID))


def test_a_mid_season_range_without_raw_history_runs_nothing_and_names_the_command(
    prefect_api, hoopflow_home, season_csv
):
    raw_dates = _game_dates(season_csv, SEASON_START, MID_END)
    range_dates = _game_dates(season_csv, MID_START, MID_END)
    # A fresh home: the run and its dry run stop before anything runs, with one message that
    # names the raw range analytics needs (the season's first date on) and the command.
    for dry_run in (False, True):
        state = backfill(MID_START, MID_END, ["analytics"], dry_run=dry_run, return_state=True)
        assert state.is_failed()
        error = state.result(raise_on_failure=False)
        assert isinstance(error, BackfillFailed)
        report = error.report
        assert report.results == []
        message = report.stopped_by
        assert message.startswith("analytics needs nba_raw.") and message.count("hoopflow backfill") == 1
        assert f"for {len(raw_dates)} game dates that are not loaded ({SEASON_START} → {MID_END})" in message
        assert f"`hoopflow backfill --start {SEASON_START} --end {MID_END} --phases raw`" in message
        assert message in state.message
        (plan,) = report.plans
        assert plan.to_run == plan.inputs_missing == range_dates
        assert not (hoopflow_home / "warehouse.duckdb").exists()  # nothing written
        assert not (hoopflow_home / "landing").exists()

    # Raw loaded for the range only: the box scores of the season before it are missing.
    assert backfill(MID_START, MID_END, ["raw"], return_state=True).is_completed()
    wh = get_settings().warehouse_block()
    ledger = len(_ledger(wh))
    history = [d for d in raw_dates if d < MID_START]
    expected = (
        f"analytics needs nba_raw.player_boxscores for {len(history)} game dates that are not loaded "
        f"({history[0]} → {history[-1]}): run `hoopflow backfill --start {history[0]} --end {history[-1]} "
        f"--phases raw` first, or add raw to --phases"
    )
    for dry_run in (True, False):
        state = backfill(MID_START, MID_END, ["analytics"], dry_run=dry_run, return_state=True)
        assert state.is_failed()
        report = state.result(raise_on_failure=False).report
        assert report.stopped_by == expected and report.results == []
        (plan,) = report.plans
        assert plan.to_run == plan.inputs_missing == range_dates
        assert len(_ledger(wh)) == ledger  # nothing ran
        _analytics_untouched(wh)

    # The command it names fills the gap; then the same backfill runs.
    assert backfill(history[0], history[-1], ["raw"], return_state=True).is_completed()
    state = backfill(MID_START, MID_END, ["analytics"], return_state=True)
    assert state.is_completed(), state.message
    assert [r.ran for r in state.result().results] == [range_dates]
    box = season_csv["player_box"]
    assert _count(wh, "SELECT count(*) FROM nba_analytics.player_game_summary") == (
        box.GAME_DATE.between(str(MID_START), str(MID_END)).sum()
    )


def test_sample_runs_spread_dates_through_every_phase_first(prefect_api, hoopflow_home, tmp_path, monkeypatch):
    dates = ["2023-11-10", "2023-11-11", "2023-11-12", "2023-11-13", "2023-11-14"]
    use_source(monkeypatch, copy_season(tmp_path, dates))
    report = backfill(date(2023, 11, 10), date(2023, 11, 14), ["raw", "analytics"], sample=2)
    stages = [(r.phase, r.stage, [str(d) for d in r.ran]) for r in report.results]
    assert stages == [
        ("raw", "sample", ["2023-11-10", "2023-11-14"]),
        # analytics on 11-14 reads the season's raw before it: those dates run next
        ("raw", "inputs", ["2023-11-11", "2023-11-12", "2023-11-13"]),
        ("analytics", "sample", ["2023-11-10", "2023-11-14"]),
        ("raw", "full", []),
        ("analytics", "full", ["2023-11-11", "2023-11-12", "2023-11-13"]),
    ]
    sample_checks = report.results[0].validation.results
    assert {r.scope for r in sample_checks} == {"2023-11-10", "2023-11-14"}  # each sample date on its own
    assert report.results[-1].validation.status in ("passed", "warnings")

    # The artifacts: progress at 100 %, the report, and one status row per date and phase.
    assert _artifact("backfill-progress").data == 100.0
    assert "| analytics | sample | 2 |" in _artifact("backfill-report").data
    grid = _artifact("backfill-status").data
    grid = yaml.safe_load(grid) if isinstance(grid, str) else grid
    assert [(row["game_date"], row["raw"], row["analytics"]) for row in grid] == [
        (d, "current", "current") for d in dates
    ]


def test_sample_with_reprocess_all_runs_each_date_once(prefect_api, hoopflow_home, tmp_path, monkeypatch):
    use_source(monkeypatch, copy_season(tmp_path, DATES))
    report = backfill(START, END, ["raw"], reprocess="all", sample=2)
    ran = [d for r in report.results for d in r.ran]
    assert sorted(ran) == [START, date(2023, 11, 11), END]  # the full stage skips the sample's
    wh = get_settings().warehouse_block()
    loads = _ledger(wh)
    for processor in RAW_PROCESSORS:  # each date once, by each raw processor
        assert sorted(loads[loads.processor == processor].game_date) == DATES, processor


def test_unknown_phase_or_mode_is_refused(prefect_api, hoopflow_home):
    state = backfill(START, END, ["raw", "gold"], return_state=True)
    assert state.is_failed() and "unknown phases ['gold']" in state.message
    state = backfill(START, END, ["raw"], reprocess="some", return_state=True)
    assert state.is_failed()
    state = backfill(START, END, [], return_state=True)
    assert state.is_failed() and "no phases given" in state.message


# ---------------------------------------------------------------- the ml phase


def test_the_ml_phase_trains_predicts_and_grades_after_the_other_phases(prefect_api, ml_home, hoopflow_home):
    hoopflow_home.mkdir(parents=True, exist_ok=True)
    shutil.copy(ml_home / "warehouse.duckdb", hoopflow_home / "warehouse.duckdb")
    state = backfill(ML_START, ML_END, ["raw", "analytics", "precompute", "ml"], return_state=True)
    assert state.is_completed(), state.message
    report = state.result()
    assert all(not r.ran for r in report.results)  # the data phases were current: only ml ran
    ml = report.ml
    assert ml.metrics["model"].mae < min(ml.metrics["last_10"].mae, ml.metrics["season"].mae)
    wh = get_settings().warehouse_block()
    assert wh.query("SELECT model_version FROM nba_predictions.models").model_version.tolist() == [ml.model_version]
    graded = wh.query("SELECT DISTINCT game_date FROM nba_predictions.grading").game_date
    assert sorted(pd.to_datetime(graded).dt.date) == list(ml.dates_graded) == list(ml.training.split.test)
    assert "## ml" in report.to_markdown() and "last-10" in report.to_text()

    # Run again: the same data and code make the same model, which is not registered twice.
    again = backfill(ML_START, ML_END, ["precompute", "ml"], return_state=True)
    assert again.is_completed() and again.result().ml.model_version == ml.model_version
    assert len(wh.query("SELECT model_version FROM nba_predictions.models")) == 1


def test_a_refused_model_stops_the_backfill_at_ml(prefect_api, ml_home, hoopflow_home, monkeypatch):
    hoopflow_home.mkdir(parents=True, exist_ok=True)
    shutil.copy(ml_home / "warehouse.duckdb", hoopflow_home / "warehouse.duckdb")
    monkeypatch.setenv("HOOPFLOW_THRESHOLDS__MODELS__MIN_MAE_MARGIN", "3")  # no model beats that
    reset_settings()
    state = backfill(ML_START, ML_END, ["precompute", "ml"], return_state=True)
    assert state.is_failed()
    assert "stopped at ml" in state.message and "REFUSED" in state.message
    assert get_settings().warehouse_block().query("SELECT count(*) AS n FROM nba_predictions.models").n[0] == 0
