"""`hoopflow backfill` in-process against the temporary Prefect API: figures and exit codes."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from hoopflow import cli
from blocks.settings import reset_settings
from tests.conftest import SEASON_DIR, copy_season, use_source

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def _keep_env(monkeypatch, hoopflow_home):
    # The CLI sets Prefect variables with setdefault; set them here so monkeypatch restores them.
    monkeypatch.setenv("PREFECT_LOCAL_STORAGE_PATH", str(hoopflow_home / "results"))
    monkeypatch.setenv("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


def test_backfill_prints_the_rows_and_exits_0(prefect_api, season_csv, capsys, tmp_path, monkeypatch, hoopflow_home):
    # A season of its own that starts on 2023-11-10 (analytics needs the season's earlier
    # dates; precompute writes nothing in its first 14 days).
    use_source(monkeypatch, copy_season(tmp_path, ["2023-11-10", "2023-11-11", "2023-11-12"]))
    assert cli.main(["backfill", "--start", "2023-11-10", "--end", "2023-11-12"]) == 0
    out = capsys.readouterr().out
    box = season_csv["player_box"]
    n = box.GAME_DATE.between("2023-11-10", "2023-11-12").sum()
    dates = box.GAME_DATE[box.GAME_DATE.between("2023-11-10", "2023-11-12")].nunique()
    line = next(x for x in out.splitlines() if "nba_raw.player_boxscores" in x)
    assert line.split()[1:] == [f"{n:,}", "rows", "over", str(dates), "dates"]
    assert "(raw, reconcile, analytics, precompute): completed" in out
    line = next(x for x in out.splitlines() if "nba_precompute.ml_feature_store" in x)
    assert line.split()[1:] == ["0", "rows", "over", "0", "dates"]  # all three are bootstrap days
    # The command closed the warehouse: its write-ahead log is in the file (a copy is whole).
    assert (hoopflow_home / "warehouse.duckdb").is_file()
    assert not (hoopflow_home / "warehouse.duckdb.wal").exists()


def test_backfill_lists_failed_dates_and_exits_1(prefect_api, tmp_path, monkeypatch, capsys):
    folder = tmp_path / "src" / "2023-24"
    folder.mkdir(parents=True)
    for name in ("schedule", "player_box", "shots"):
        df = pd.read_csv(SEASON_DIR / f"{name}.csv.gz", dtype=str, keep_default_na=False)
        df = df[df.GAME_DATE.isin(["2023-11-10", "2023-11-11"])]
        if name == "shots":  # a shot distance that is not a number, on one date
            df.loc[df.GAME_DATE == "2023-11-11", "SHOT_DISTANCE"] = "far"
        df.to_csv(folder / f"{name}.csv.gz", index=False)
    monkeypatch.setenv("HOOPFLOW_SOURCE_DIR", str(folder.parent))
    reset_settings()
    assert cli.main(["backfill", "--start", "2023-11-10", "--end", "2023-11-11"]) == 1
    err = capsys.readouterr().err
    assert "1 of 2 dates failed: 2023-11-11" in err


def test_bad_date_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["backfill", "--start", "2023-13-01"])
    assert info.value.code == 2
    assert "not a YYYY-MM-DD date" in capsys.readouterr().err


def test_unknown_phase_is_a_usage_error(capsys):
    assert cli.main(["backfill", "--start", "2023-11-10", "--end", "2023-11-10", "--phases", "raw,gold"]) == 2
    assert "unknown phases ['gold']" in capsys.readouterr().err


def test_chunk_days_below_one_is_a_usage_error(capsys):
    assert cli.main(["backfill", "--executor", "deployments", "--chunk-days", "0"]) == 2
    assert "--chunk-days must be ≥ 1" in capsys.readouterr().err


def test_daily_on_a_day_without_games_exits_0_with_the_note(prefect_api, capsys):
    assert cli.main(["daily", "--date", "2023-11-23"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "daily 2023-11-23: no games", "  No games on 2023-11-23: nothing to ingest."
    ]


def test_daily_exits_1_naming_the_missing_history(prefect_api, capsys):
    assert cli.main(["daily", "--date", "2023-10-25"]) == 1  # 2023-10-24 was never loaded
    err = capsys.readouterr().err
    assert "needs nba_raw.player_boxscores for every game date of its season before 2023-10-25" in err
    assert "1 missing: 2023-10-24" in err


def test_setup_is_idempotent_and_creates_the_rate_limit(prefect_api, hoopflow_home, capsys):
    from prefect.client.orchestration import get_client

    assert cli.main(["setup"]) == 0
    assert cli.main(["setup"]) == 0
    with get_client(sync_client=True) as client:
        limit = client.read_global_concurrency_limit_by_name("nba-stats-api")
    assert (limit.limit, limit.slot_decay_per_second) == (1, 0.5)
    assert "rate limit 'nba-stats-api'" in capsys.readouterr().out
    assert (hoopflow_home / "warehouse.duckdb").is_file()


def test_validate_exits_0_when_every_check_passes(prefect_api, built_copy, capsys):
    code = cli.main(["validate", "--phase", "analytics", "--start", "2023-11-06", "--end", "2023-11-12"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.startswith("analytics validation passed")
    assert "ok   nba_analytics.player_game_summary" in out


def test_validate_exits_2_on_warnings_only(prefect_api, built_copy, capsys):
    # 2023-10-27: one team-game whose shot chart lacks an attempt the box score has (an
    # NBA.com inconsistency, data/nba README): a warning, not a failure.
    code = cli.main(["validate", "--phase", "analytics", "--start", "2023-10-27", "--end", "2023-10-27"])
    out = capsys.readouterr().out
    assert code == 2, out
    assert re.search(r"WARN nba_analytics.team_offense_game_summary +zone_attempts_equal_fga", out)


def test_validate_exits_1_when_a_critical_check_fails(prefect_api, built_copy, capsys):
    from blocks.settings import get_settings

    get_settings().warehouse_block().query(
        "DELETE FROM nba_raw.shots WHERE game_id = '0022300180'"  # a game loses its shot chart
    )
    code = cli.main(["validate", "--phase", "raw", "--start", "2023-11-06", "--end", "2023-11-12"])
    out = capsys.readouterr().out
    assert code == 1, out
    assert "FAIL nba_raw.shots" in out and "every_game_has_shots" in out
    assert "game_id=0022300180" in out


def test_status_prints_the_date_by_phase_grid(built_copy, capsys, season_csv):
    assert cli.main(["status", "--start", "2023-11-19", "--end", "2023-11-22"]) == 0
    out = capsys.readouterr().out.splitlines()
    dates = sorted(d for d in set(season_csv["schedule"].GAME_DATE) if "2023-11-19" <= d <= "2023-11-22")
    rows = {line.split()[0]: line.split()[1:] for line in out if line[:4] == "2023"}
    assert sorted(rows) == dates
    built = [d for d in dates if d <= "2023-11-20"]  # the built home ends on 2023-11-20
    # raw, reconcile, analytics, precompute
    assert all(rows[d] == ["current"] * 4 for d in built)
    assert all(rows[d] == ["missing"] * 4 for d in dates if d not in built)


def test_backfill_dry_run_prints_the_plan_and_writes_nothing(prefect_api, hoopflow_home, capsys, season_csv):
    assert cli.main(["backfill", "--start", "2023-11-10", "--end", "2023-11-12", "--dry-run"]) == 0
    out = capsys.readouterr().out
    # precompute reads the season's analytics, which reads the season's raw: both would run
    # from the season's first date (2023-10-24); precompute only on the range's three dates.
    days = season_csv["schedule"].GAME_DATE
    n = days[days.between("2023-10-24", "2023-11-12")].nunique()
    assert "dry run" in out
    assert f"| raw | {n} | 0 | 0 | 0 | {n} | 0 |" in out and f"| analytics | {n} | 0 | 0 | 0 | {n} | 0 |" in out
    assert "| precompute | 3 | 0 | 0 | 0 | 3 | 0 |" in out
    assert not (hoopflow_home / "warehouse.duckdb").exists()


def test_a_negative_sample_is_a_usage_error(capsys):
    assert cli.main(["backfill", "--sample", "-1"]) == 2
    assert "--sample must be ≥ 0" in capsys.readouterr().err


def test_validate_on_an_empty_home_fails_on_coverage(prefect_api, hoopflow_home, capsys):
    code = cli.main(["validate", "--phase", "raw", "--start", "2023-11-10", "--end", "2023-11-10"])
    out = capsys.readouterr().out
    assert code == 1, out
    assert "0 of 1 processable dates have rows; missing 2023-11-10" in out


def test_a_range_without_games_is_a_clean_no_op(prefect_api, hoopflow_home, capsys):
    assert cli.main(["backfill", "--start", "2023-12-24", "--end", "2023-12-24"]) == 0
    out = capsys.readouterr().out
    assert "0 game dates" in out and "completed" in out


@pytest.mark.parametrize(
    ("args", "env", "said"),
    [
        (["backfill", "--start", "2023-11-12", "--end", "2023-11-10"], {}, "--start 2023-11-12 is after --end 2023-11-10"),
        (["backfill", "--phases", ","], {}, "--phases names no phase"),
        (["status", "--phases", ""], {}, "--phases names no phase"),
        (["train", "--start", "2024-02-01", "--end", "2024-01-01"], {}, "--start 2024-02-01 is after --end"),
        (["backfill"], {"HOOPFLOW_WAREHOUSE": "bogus"}, "bad settings: HOOPFLOW_WAREHOUSE: Input should be"),
        (["backfill", "--start", "2023-11-10", "--end", "2023-11-12"], {"HOOPFLOW_THRESHOLDS_FILE": "{bad}"},
         "schedule.bogus_key: unknown key"),
        (["validate", "--phase", "raw"], {"HOOPFLOW_THRESHOLDS_FILE": "{bad}"}, "schedule.bogus_key: unknown key"),
        (["status"], {"HOOPFLOW_SOURCE_DIR": "{nowhere}"}, "no season folder"),
    ],
)
def test_usage_errors_exit_2_in_one_line_before_anything_runs(args, env, said, hoopflow_home, tmp_path, monkeypatch,
                                                              capsys):  # fmt: skip
    bad = tmp_path / "thresholds.yaml"
    bad.write_text("schedule:\n  bogus_key: 1\n")
    for key, value in env.items():
        monkeypatch.setenv(key, value.format(bad=bad, nowhere=tmp_path / "nowhere"))
    reset_settings()
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and said in err, err
    assert not (hoopflow_home / "warehouse.duckdb").exists()  # nothing ran


def test_ctrl_c_stops_the_command_in_seconds_and_a_rerun_resumes(prefect_api, hoopflow_home, season_csv, capsys):
    import os
    import signal
    import subprocess
    import sys
    import time

    from blocks.settings import REPO_ROOT

    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}  # its own temporary API, as a user's
    env.update(HOOPFLOW_HOME=str(hoopflow_home), PYTHONPATH=str(REPO_ROOT))
    args = ["backfill", "--start", "2023-10-24", "--end", "2023-11-20", "--phases", "raw,analytics"]
    # Its own session: a terminal's Ctrl-C reaches the whole foreground process group.
    child = subprocess.Popen([sys.executable, "-m", "hoopflow.cli", *args], env=env, cwd=REPO_ROOT,
                             start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    landed = hoopflow_home / "landing" / "shots"
    deadline = time.monotonic() + 300
    while len(list(landed.glob("*.csv"))) < 3:
        assert child.poll() is None and time.monotonic() < deadline, "the backfill ended before it could be stopped"
        time.sleep(0.1)
    os.killpg(child.pid, signal.SIGINT)
    out, _ = child.communicate(timeout=60)  # it used to retry its dead API for minutes
    assert child.returncode == 130, out
    assert "interrupted" in out and "run the same command again to resume" in out
    assert "Traceback" not in out and len(out.splitlines()) < 40, out

    assert cli.main(args) == 0  # the rerun resumes (here against the test's API)
    box = season_csv["player_box"]
    n = box.GAME_DATE.between("2023-10-24", "2023-11-20").sum()
    line = next(x for x in capsys.readouterr().out.splitlines() if "nba_analytics.player_game_summary" in x)
    assert line.split()[1] == f"{n:,}"
