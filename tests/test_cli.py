"""`hoopflow backfill` in-process against the temporary Prefect API: figures and exit codes."""

from __future__ import annotations

import pandas as pd
import pytest

from hoopflow import cli
from hoopflow.settings import reset_settings
from tests.conftest import SEASON_DIR

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def _keep_env(monkeypatch, hoopflow_home):
    # The CLI sets Prefect variables with setdefault; set them here so monkeypatch restores them.
    monkeypatch.setenv("PREFECT_LOCAL_STORAGE_PATH", str(hoopflow_home / "results"))
    monkeypatch.setenv("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


def test_backfill_prints_the_rows_and_exits_0(prefect_api, season_csv, capsys):
    assert cli.main(["backfill", "--start", "2023-11-10", "--end", "2023-11-12"]) == 0
    out = capsys.readouterr().out
    box = season_csv["player_box"]
    n = box.GAME_DATE.between("2023-11-10", "2023-11-12").sum()
    dates = box.GAME_DATE[box.GAME_DATE.between("2023-11-10", "2023-11-12")].nunique()
    line = next(x for x in out.splitlines() if "nba_raw.player_boxscores" in x)
    assert line.split()[1:] == [f"{n:,}", "rows", "over", str(dates), "dates"]
    assert "(raw, analytics): completed" in out


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


def test_setup_is_idempotent_and_creates_the_rate_limit(prefect_api, hoopflow_home, capsys):
    from prefect.client.orchestration import get_client

    assert cli.main(["setup"]) == 0
    assert cli.main(["setup"]) == 0
    with get_client(sync_client=True) as client:
        limit = client.read_global_concurrency_limit_by_name("nba-stats-api")
    assert (limit.limit, limit.slot_decay_per_second) == (1, 0.5)
    assert "rate limit 'nba-stats-api'" in capsys.readouterr().out
    assert (hoopflow_home / "warehouse.duckdb").is_file()
