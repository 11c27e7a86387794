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
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.settings import PREFECT_API_URL

from flows.backfill import backfill
from blocks.settings import REPO_ROOT, get_settings, reset_settings
from tests.conftest import ML_END, ML_START, copy_season, use_source

pytestmark = pytest.mark.e2e

DATES = ["2023-11-10", "2023-11-11", "2023-11-12"]
START, END = date(2023, 11, 10), date(2023, 11, 12)


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

    assert backfill(START, END, ["raw"], reprocess="failed", return_state=True).is_completed()
    new = _ledger(wh).iloc[first:]
    assert set(new.game_date) == {"2023-11-11"}  # only the failed date ran again
    assert set(new.processor) == {"extract_shots", "load_raw"}  # the other extracts: cached
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
        (p, d) for p in ("extract_schedule", "extract_player_box", "extract_shots", "load_raw") for d in DATES[:2]
    )
    assert _count(wh, "SELECT count(*) FROM (SELECT game_id, player_id FROM nba_raw.player_boxscores "
                      "GROUP BY 1, 2 HAVING count(*) > 1)") == 0  # fmt: skip


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
    assert len(list(landed.glob("*.csv"))) < 10  # it really stopped mid-phase

    reset_settings()
    wh = get_settings().warehouse_block()
    before = _ledger(wh)
    done_before = set(before[(before.processor == "load_raw") & (before.status == "succeeded")].game_date)
    assert done_before  # some dates were loaded before the kill

    state = backfill(start, end, ["raw", "analytics"], return_state=True)
    assert state.is_completed(), state.message  # the gates include duplicate keys and coverage
    after = _ledger(wh).iloc[len(before):]
    # Dates loaded before the kill were not loaded again; every other date was.
    assert set(after[after.processor == "load_raw"].game_date).isdisjoint(done_before)
    box = season_csv["player_box"]
    in_range = box[box.GAME_DATE.between(str(start), str(end))]
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
    report = backfill(START, END, ["analytics"], dry_run=True)
    (plan,) = report.plans
    assert plan.to_run == [date(2023, 11, 10), date(2023, 11, 11), date(2023, 11, 12)]
    assert plan.inputs_missing == [date(2023, 11, 12)]  # raw is not loaded there
    assert len(_ledger(wh)) == ledger
    assert _count(wh, "SELECT count(*) FROM nba_analytics.player_game_summary") == 0
    assert "inputs missing" in _artifact("backfill-report").data


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
    assert sorted(loads[loads.processor == "load_raw"].game_date) == DATES


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
