"""The raw phase end to end: real Prefect API (test harness), real DuckDB file, real landing
folder. Expected figures come from pandas over the bundled CSVs, never from the warehouse."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from blocks.settings import REPO_ROOT, get_settings
from engine.runner import PhaseFailed, PhaseResult
from flows.backfill import backfill
from flows.raw import raw
from tests.conftest import copy_season as _copy_season
from tests.conftest import use_source as _use_source

pytestmark = pytest.mark.e2e

START, END = date(2023, 10, 24), date(2023, 10, 29)
RAW_PROCESSORS = ("schedule", "player_boxscores", "shots", "espn_team_boxscores")  # = their tables = ledger names


def _per_date(warehouse, sql: str) -> pd.DataFrame:
    df = warehouse.query(sql, {"start": START, "end": END})
    df["game_date"] = pd.to_datetime(df["game_date"]).dt.strftime("%Y-%m-%d")
    return df.set_index("game_date").sort_index().astype("int64")


def _ledger(warehouse) -> pd.DataFrame:
    return warehouse.query("SELECT * FROM nba_ops.run_ledger ORDER BY started_at")


def _dates_in(warehouse, table: str) -> list[str]:
    got = warehouse.query(f"SELECT DISTINCT CAST(game_date AS VARCHAR) AS d FROM nba_raw.{table} ORDER BY 1")
    return list(got.d)


def _csv_per_date(csv: pd.DataFrame, **sums: str) -> pd.DataFrame:
    in_range = csv[(csv.GAME_DATE >= str(START)) & (csv.GAME_DATE <= str(END))]
    agg = {"n": ("GAME_DATE", "size"), **{k: (v, "sum") for k, v in sums.items()}}
    out = in_range.groupby("GAME_DATE").agg(**agg).astype("int64")
    out.index.name = "game_date"
    return out


def test_backfill_loads_exactly_the_csv_rows_and_a_rerun_writes_nothing(
    prefect_api, hoopflow_home, season_csv
):
    state = backfill(START, END, ["raw"], return_state=True)
    assert state.is_completed(), state.message
    wh = get_settings().warehouse_block()

    box = _per_date(
        wh,
        "SELECT game_date, count(*) AS n, sum(pts) AS pts, sum(fga) AS fga, sum(plus_minus) AS pm "
        "FROM nba_raw.player_boxscores WHERE game_date BETWEEN @start AND @end GROUP BY 1",
    )
    pd.testing.assert_frame_equal(
        box, _csv_per_date(season_csv["player_box"], pts="PTS", fga="FGA", pm="PLUS_MINUS")
    )
    shots = _per_date(
        wh,
        "SELECT game_date, count(*) AS n, sum(shot_made) AS made, sum(shot_distance) AS dist "
        "FROM nba_raw.shots WHERE game_date BETWEEN @start AND @end GROUP BY 1",
    )
    pd.testing.assert_frame_equal(
        shots, _csv_per_date(season_csv["shots"], made="SHOT_MADE", dist="SHOT_DISTANCE")
    )
    schedule = _per_date(
        wh,
        "SELECT game_date, count(*) AS n, sum(home_pts) AS home, sum(away_pts) AS away, "
        "sum(num_ot) AS ot FROM nba_raw.schedule WHERE game_date BETWEEN @start AND @end GROUP BY 1",
    )
    pd.testing.assert_frame_equal(
        schedule, _csv_per_date(season_csv["schedule"], home="HOME_PTS", away="AWAY_PTS", ot="NUM_OT")
    )
    # ESPN's team box: every row of the range's dates, its score total per date as in the CSV
    espn_csv = pd.read_csv(REPO_ROOT / "data" / "espn" / "2023-24" / "team_box.csv.gz")
    espn_csv = espn_csv[espn_csv.game_date.between(START.isoformat(), END.isoformat())]
    espn = _per_date(wh, "SELECT game_date, count(*) AS n, sum(team_score) AS pts FROM nba_raw.espn_team_boxscores "
                         "WHERE game_date BETWEEN @start AND @end GROUP BY 1")  # fmt: skip
    assert espn.n.tolist() == espn_csv.groupby("game_date").size().tolist()
    assert espn.pts.tolist() == espn_csv.groupby("game_date").team_score.sum().tolist()
    # Game ids keep their leading zeros; coordinates keep their decimals.
    ids = wh.query("SELECT DISTINCT game_id FROM nba_raw.schedule ORDER BY 1").game_id
    assert ids.iloc[0] == "0022300061"
    loc = wh.query("SELECT round(sum(loc_x), 1) AS x FROM nba_raw.shots").x.iloc[0]
    expected_x = season_csv["shots"].query("GAME_DATE >= @START.isoformat() and GAME_DATE <= @END.isoformat()").LOC_X.sum()
    assert loc == pytest.approx(expected_x, abs=0.05)

    ledger = _ledger(wh)
    n_dates = season_csv["schedule"].query("GAME_DATE >= @START.isoformat() and GAME_DATE <= @END.isoformat()").GAME_DATE.nunique()
    assert sorted(set(ledger.processor)) == sorted(RAW_PROCESSORS)
    for processor in RAW_PROCESSORS:  # one successful run per processor and date
        runs = ledger[ledger.processor == processor]
        assert len(runs) == n_dates and (runs.status == "succeeded").all(), processor
        assert runs.game_date.nunique() == n_dates, processor

    # A rerun of a finished range: every task is a cache hit, nothing is written again.
    state = backfill(START, END, ["raw"], return_state=True)
    assert state.is_completed()
    assert len(_ledger(wh)) == len(ledger)
    assert wh.query("SELECT count(*) AS n FROM nba_raw.player_boxscores").n[0] == box.n.sum()


def test_bad_landing_file_fails_its_date_only_and_is_kept(
    prefect_api, hoopflow_home, tmp_path, monkeypatch
):
    dates = ["2023-11-01", "2023-11-02", "2023-11-03"]
    folder = _copy_season(tmp_path, dates)
    box = pd.read_csv(folder / "player_box.csv.gz", dtype=str, keep_default_na=False)
    box.loc[box.index[box.GAME_DATE == "2023-11-02"][4], "PTS"] = "12a"
    box.to_csv(folder / "player_box.csv.gz", index=False)
    _use_source(monkeypatch, folder)

    state = backfill(date(2023, 11, 1), date(2023, 11, 3), ["raw"], return_state=True)
    assert state.is_failed()
    assert "1 of 3 dates failed: 2023-11-02" in state.message

    wh = get_settings().warehouse_block()
    # Each processor writes its own table: the bad box score file writes nothing of its date
    # into player_boxscores; the date's schedule and shot chart, which are fine, are loaded.
    assert _dates_in(wh, "player_boxscores") == ["2023-11-01", "2023-11-03"]  # nothing of the bad date
    for table in ("schedule", "shots"):
        assert _dates_in(wh, table) == dates, table
    ledger = _ledger(wh)
    failed = ledger[ledger.status == "failed"]
    assert list(failed.processor) == ["player_boxscores"]  # a data error is not retried
    assert list(failed.game_date.astype(str)) == ["2023-11-02"]
    assert "player_box/2023-11-02.csv" in failed.error.iloc[0]
    assert "game date 2023-11-02" in failed.error.iloc[0] and "field PTS" in failed.error.iloc[0]
    kept = hoopflow_home / "landing" / "player_box" / "2023-11-02.csv"
    assert "12a" in kept.read_text()  # the landing copy stays for inspection


def test_a_corrupt_shot_chart_fails_its_date_in_a_range_run_and_the_others_are_written(
    prefect_api, hoopflow_home, tmp_path, monkeypatch
):
    dates = ["2023-11-01", "2023-11-02", "2023-11-03"]
    folder = _copy_season(tmp_path, dates)
    shots = pd.read_csv(folder / "shots.csv.gz", dtype=str, keep_default_na=False)
    bad_line = shots.index[shots.GAME_DATE == "2023-11-02"][3]
    shots.loc[bad_line, "LOC_X"] = "left corner"
    shots.to_csv(folder / "shots.csv.gz", index=False)
    _use_source(monkeypatch, folder)
    expected = shots.assign(d=shots.GAME_DATE).groupby("d").size()  # pandas over the copied CSV

    state = raw(date(2023, 11, 1), date(2023, 11, 3), return_state=True)

    assert state.is_failed()
    message = state.message
    assert "raw: 1 of 3 dates failed: 2023-11-02: shots: LandingFileError" in message
    assert "shots/2023-11-02.csv" in message and "(game date 2023-11-02)" in message
    assert "field LOC_X: not a number" in message and "'left corner'" in message
    failure = state.result(raise_on_failure=False)
    assert isinstance(failure, PhaseFailed)
    result = failure.result
    assert result.dates == [date.fromisoformat(d) for d in dates]
    assert list(result.failed) == [date(2023, 11, 2)]
    assert result.done == [date(2023, 11, 1), date(2023, 11, 3)]
    assert result.rows["shots"] == expected["2023-11-01"] + expected["2023-11-03"]

    wh = get_settings().warehouse_block()
    assert _dates_in(wh, "shots") == ["2023-11-01", "2023-11-03"]  # nothing of the bad date
    for table in ("schedule", "player_boxscores"):  # the date's other files are fine: loaded
        assert _dates_in(wh, table) == dates, table
    n = wh.query("SELECT CAST(game_date AS VARCHAR) AS d, count(*) AS n FROM nba_raw.shots GROUP BY 1")
    assert dict(zip(n.d, n.n, strict=True)) == {d: expected[d] for d in ("2023-11-01", "2023-11-03")}
    ledger = _ledger(wh)
    failed = ledger[ledger.status == "failed"]
    assert list(zip(failed.processor, failed.game_date.astype(str), strict=True)) == [("shots", "2023-11-02")]
    assert "field LOC_X" in failed.error.iloc[0] and "shots/2023-11-02.csv" in failed.error.iloc[0]
    kept = hoopflow_home / "landing" / "shots" / "2023-11-02.csv"
    lines = kept.read_text().splitlines()  # the landing copy stays for inspection
    line = next(i for i, text in enumerate(lines, 1) if "left corner" in text)
    assert f"line {line}: 'left corner'" in message
    assert len(lines) == 1 + expected["2023-11-02"]  # the whole file, as received


def test_changed_source_date_recomputes_that_date_only(
    prefect_api, hoopflow_home, tmp_path, monkeypatch
):
    dates = ["2023-11-01", "2023-11-02", "2023-11-03"]
    folder = _copy_season(tmp_path, dates)
    _use_source(monkeypatch, folder)
    assert backfill(date(2023, 11, 1), date(2023, 11, 3), ["raw"], return_state=True).is_completed()
    wh = get_settings().warehouse_block()
    before = len(_ledger(wh))

    # A late stat correction on one date: one player's assists (a points correction would
    # also need the final score corrected, or the raw validation stops the backfill).
    box = pd.read_csv(folder / "player_box.csv.gz", dtype=str, keep_default_na=False)
    row = box.index[box.GAME_DATE == "2023-11-03"][0]
    box.loc[row, "AST"] = str(int(box.loc[row, "AST"]) + 2)
    box.to_csv(folder / "player_box.csv.gz", index=False)

    assert backfill(date(2023, 11, 1), date(2023, 11, 3), ["raw"], return_state=True).is_completed()
    new = _ledger(wh).iloc[before:]
    assert sorted(zip(new.processor, new.game_date.astype(str), strict=True)) == [
        ("player_boxscores", "2023-11-03"),
    ]
    ast = wh.query(
        "SELECT ast FROM nba_raw.player_boxscores WHERE game_id = @g AND player_id = @p",
        {"g": box.loc[row, "GAME_ID"], "p": int(box.loc[row, "PLAYER_ID"])},
    ).ast
    assert list(ast) == [int(box.loc[row, "AST"])]  # replaced, not duplicated


def test_a_date_without_games_is_a_clean_no_op(prefect_api, hoopflow_home, season_csv):
    christmas_eve = date(2023, 12, 24)
    assert str(christmas_eve) not in set(season_csv["schedule"].GAME_DATE)
    result = raw(christmas_eve)
    assert isinstance(result, PhaseResult)
    assert (result.dates, result.ran, result.skipped, result.failed, result.rows) == ([], [], [], {}, {})
    assert not (hoopflow_home / "landing").exists()


def test_another_season_folder_works_unchanged(
    prefect_api, hoopflow_home, tmp_path, monkeypatch, season_csv
):
    # Same layout, another folder name and only the season's last week: nothing assumes 2023-24.
    folder = _copy_season(tmp_path, ["2024-04-12", "2024-04-14"])
    folder.rename(folder.parent / "1999-00")
    _use_source(monkeypatch, folder.parent / "1999-00")
    assert get_settings().source_block().game_dates(date.min, date.max) == [
        date(2024, 4, 12), date(2024, 4, 14)
    ]  # fmt: skip
    assert backfill(date(2024, 4, 1), date(2024, 4, 30), ["raw"], return_state=True).is_completed()
    n = get_settings().warehouse_block().query("SELECT count(*) AS n FROM nba_raw.schedule").n[0]
    assert n == season_csv["schedule"].GAME_DATE.isin(["2024-04-12", "2024-04-14"]).sum()
