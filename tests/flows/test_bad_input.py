"""A corpus of bad input, one defect per case on copies of real files, run through the raw
phase of a backfill (real temporary Prefect API, DuckDB file, landing folder): each case gets
a clear error naming the file, the date and the field (or the check that catches it), writes
nothing partial, keeps the landing copy of what the source said, and writes the other dates.
Expected rows come from pandas over the copied CSVs. (An ESPN file with a game NBA.com does
not have waits for ESPN as a source: issue 14.)"""

from __future__ import annotations

import gzip
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from blocks.settings import get_settings
from engine.ledger import RUN_LEDGER
from flows.backfill import backfill
from tests.conftest import SEASON_DIR, copy_season, use_source

pytestmark = pytest.mark.e2e

DATES = ["2023-11-10", "2023-11-11", "2023-11-12"]
START, END = date(2023, 11, 10), date(2023, 11, 12)
TABLE = {"schedule": "schedule", "player_box": "player_boxscores", "shots": "shots"}  # source file → table


def _edit_rows(folder: Path, name: str, edit) -> None:
    df = pd.read_csv(folder / f"{name}.csv.gz", dtype=str, keep_default_na=False)
    edit(df)
    df.to_csv(folder / f"{name}.csv.gz", index=False)


def _truncate(folder: Path, name: str) -> None:
    data = (folder / f"{name}.csv.gz").read_bytes()
    (folder / f"{name}.csv.gz").write_bytes(data[: len(data) // 2])


def _empty(folder: Path, name: str) -> None:
    (folder / f"{name}.csv.gz").write_bytes(b"")


def _us_date(df: pd.DataFrame) -> None:  # one row's date as 11/11/2023
    df.loc[df.index[df.GAME_DATE == "2023-11-11"][3], "GAME_DATE"] = "11/11/2023"


def _latin1(folder: Path, name: str) -> None:  # one player's name in Latin-1 on 2023-11-12
    lines = gzip.decompress((folder / f"{name}.csv.gz").read_bytes()).split(b"\n")
    i = next(k for k, line in enumerate(lines) if b",2023-11-12," in line)
    lines[i] = lines[i].replace(b"a", b"\xe9", 1)
    (folder / f"{name}.csv.gz").write_bytes(gzip.compress(b"\n".join(lines)))


def _text_points(df: pd.DataFrame) -> None:
    df.loc[df.index[df.GAME_DATE == "2023-11-10"][0], "PTS"] = "twelve"


def _no_column(df: pd.DataFrame) -> None:
    df.drop(columns=["SHOT_DISTANCE"], inplace=True)


def _makes_over_attempts(df: pd.DataFrame) -> None:
    i = df.index[(df.GAME_DATE == "2023-11-11") & (df.FGA.astype(int) > 0)][0]
    df.loc[i, "FGM"] = str(int(df.loc[i, "FGA"]) + 1)


# case → (source file, defect, dates whose file fails, what the error names, or the check)
CASES = {
    "truncated gzip": ("shots", lambda f: _truncate(f, "shots"), DATES,
                       ["shots.csv.gz", "cannot be read: not a complete gzip file"]),
    "empty file": ("player_box", lambda f: _empty(f, "player_box"), DATES,
                   ["player_box.csv.gz", "cannot be read as CSV"]),
    "a date as 11/11/2023": ("player_box", lambda f: _edit_rows(f, "player_box", _us_date), ["2023-11-11"],
                             ["player_box/2023-11-11.csv", "game date 2023-11-11", "field GAME_DATE", "'11/11/2023'"]),
    "a byte that is not UTF-8": ("player_box", lambda f: _latin1(f, "player_box"), ["2023-11-12"],
                                 ["player_box.csv.gz", "game date 2023-11-12", "byte 0xe9", "not UTF-8"]),
    "text in a count": ("player_box", lambda f: _edit_rows(f, "player_box", _text_points), ["2023-11-10"],
                        ["player_box/2023-11-10.csv", "game date 2023-11-10", "field PTS", "'twelve'"]),
    "a missing column": ("shots", lambda f: _edit_rows(f, "shots", _no_column), DATES,
                         ["landing/shots/", "field SHOT_DISTANCE: column missing"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_file_fails_its_dates_and_nothing_else(case, prefect_api, hoopflow_home, tmp_path, monkeypatch):
    name, defect, failing, named = CASES[case]
    folder = copy_season(tmp_path, DATES)
    clean = {n: pd.read_csv(folder / f"{n}.csv.gz", dtype=str, keep_default_na=False) for n in TABLE}
    defect(folder)
    use_source(monkeypatch, folder)

    state = backfill(START, END, ["raw", "analytics"], return_state=True)
    assert state.is_failed()
    report = state.result(raise_on_failure=False).report  # the report is still made
    raw = next(r for r in report.results if r.phase == "raw")
    failed = {str(d): m for d, m in raw.failed.items()}
    assert sorted(failed) == sorted(failing), failed
    for message in failed.values():
        assert all(part in message for part in named), message
    assert "stopped after raw" in report.headline()  # the gate holds analytics back
    wh = get_settings().warehouse_block()
    held = wh.query(f"SELECT CAST(game_date AS VARCHAR) AS d, count(*) AS n FROM nba_raw.{TABLE[name]} GROUP BY 1")
    held = dict(zip(held.d, held.n, strict=True))
    for d in DATES:  # nothing partial on a failed date; every row on the others
        expected = 0 if d in failing else int((clean[name].GAME_DATE == d).sum())
        assert held.get(d, 0) == expected, d
    for other in (n for n in TABLE if n != name):  # the other files' tables: every date
        counts = wh.query(f"SELECT count(*) AS n FROM nba_raw.{TABLE[other]}").n[0]
        assert counts == len(clean[other]), other
    landed = hoopflow_home / "landing" / name
    if "field" in " ".join(named):  # the source was read: its copy stays
        assert all((landed / f"{d}.csv").is_file() for d in failing)


def test_a_check_catches_what_no_single_row_shows(prefect_api, hoopflow_home, tmp_path, monkeypatch):
    # More makes than attempts: every field is a valid number, the row is impossible.
    folder = copy_season(tmp_path, DATES)
    _edit_rows(folder, "player_box", _makes_over_attempts)
    use_source(monkeypatch, folder)
    state = backfill(START, END, ["raw"], return_state=True)
    assert state.is_failed()
    report = state.result(raise_on_failure=False).report
    assert not report.failed_dates  # loaded as the source said it
    blocking = report.results[-1].validation.blocking
    # One more make than attempts breaks both rules it touches: makes ≤ attempts, and
    # PTS = 2·FGM + FG3M + FTM (the points were not changed).
    assert sorted((c.table, c.name) for c in blocking) == [
        ("nba_raw.player_boxscores", "makes_within_attempts"),
        ("nba_raw.player_boxscores", "points_from_makes"),
    ], [(c.table, c.name, c.message) for c in blocking]
    assert all(": 1 of " in c.message for c in blocking)  # the one edited row
    assert "2023-11-11" in report.headline()


def test_a_schedule_that_cannot_be_read_names_itself_and_its_season(prefect_api, hoopflow_home, tmp_path,
                                                                     monkeypatch):  # fmt: skip
    folder = copy_season(tmp_path, DATES)
    _truncate(folder, "schedule")
    use_source(monkeypatch, folder)
    state = backfill(START, END, ["raw"], return_state=True)
    assert state.is_failed()
    assert "schedule.csv.gz: cannot be read" in state.message and "season 2023-24 are unknown" in state.message
    wh = get_settings().warehouse_block()
    assert not wh.has_table(RUN_LEDGER) or wh.query("SELECT count(*) AS n FROM nba_ops.run_ledger").n[0] == 0


def test_an_unreadable_season_does_not_stop_another_season(prefect_api, hoopflow_home, tmp_path, monkeypatch):
    folder = copy_season(tmp_path, DATES)
    other = folder.parent / "2022-23"  # a season folder whose schedule cannot be read
    other.mkdir()
    for n in TABLE:
        (other / f"{n}.csv.gz").write_bytes((SEASON_DIR / f"{n}.csv.gz").read_bytes()[:100])
    use_source(monkeypatch, folder)
    assert backfill(START, END, ["raw"], return_state=True).is_completed()
