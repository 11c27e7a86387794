"""hoopflow.chaos: its checksums (independent of the code under test), kill times and log
reading, on a small DuckDB file and made-up output; `make chaos` itself is not run here."""

from __future__ import annotations

import duckdb

from hoopflow.chaos import _kill_times, differences, order_only, running_at, table_sums, timeline


def _warehouse(path, rows, ledger):
    con = duckdb.connect(str(path))
    con.execute("CREATE SCHEMA nba_raw; CREATE SCHEMA nba_ops")
    con.execute("CREATE TABLE nba_raw.schedule (game_id VARCHAR, game_date DATE, home_pts BIGINT, "
                "pace DOUBLE, ingested_at TIMESTAMP, run_id VARCHAR)")  # fmt: skip
    con.executemany("INSERT INTO nba_raw.schedule VALUES (?, ?, ?, ?, now(), uuid())", rows)
    con.execute("CREATE TABLE nba_ops.run_ledger (run_id VARCHAR, processor VARCHAR, game_date DATE, "
                "status VARCHAR, rows_written BIGINT, input_fingerprint VARCHAR, code_version VARCHAR, "
                "attempt BIGINT, finished_at TIMESTAMP)")  # fmt: skip
    con.executemany("INSERT INTO nba_ops.run_ledger VALUES (uuid(), ?, ?, ?, ?, ?, ?, ?, ?)", ledger)
    con.close()
    return table_sums(path)


ROWS = [("0022300001", "2023-10-24", 119, 101.25), ("0022300002", "2023-10-24", 126, 99.0),
        ("0022300003", "2023-10-25", 104, 97.5)]  # fmt: skip
LEDGER = [("schedule", "2023-10-24", "succeeded", 2, "fp", "v1", 1, "2023-10-24 10:00:00"),
          ("schedule", "2023-10-25", "succeeded", 1, "fp2", "v1", 1, "2023-10-24 10:00:01")]  # fmt: skip


def test_same_rows_in_another_order_with_other_timestamps_and_ids_are_equal(tmp_path):
    clean = _warehouse(tmp_path / "a.duckdb", ROWS, LEDGER)
    # A resumed run: rows in another order, and a killed attempt and a failed retry in the ledger.
    extra = [("schedule", "2023-10-25", "failed", 0, "fp2", "v1", 1, "2023-10-24 09:00:00"),
             ("schedule", "2023-10-25", "succeeded", 1, "fp2", "v1", 2, "2023-10-24 09:00:05")]  # fmt: skip
    resumed = _warehouse(tmp_path / "b.duckdb", ROWS[::-1], LEDGER + extra)
    assert differences(clean, resumed) == ([], [])
    assert clean["nba_raw.schedule"].rows == 3
    assert clean["nba_raw.schedule"].duplicates == 0  # no declared key: identical rows counted


def test_a_changed_value_or_a_duplicate_is_found_with_its_date(tmp_path):
    clean = _warehouse(tmp_path / "a.duckdb", ROWS, LEDGER)
    changed = _warehouse(tmp_path / "b.duckdb", [*ROWS[:2], ("0022300003", "2023-10-25", 104, 97.6)], LEDGER)
    assert differences(clean, changed) == (["nba_raw.schedule: 3 rows clean, 3 here; dates 2023-10-25"], [])
    doubled = _warehouse(tmp_path / "c.duckdb", [*ROWS, ROWS[0]], LEDGER)
    assert differences(clean, doubled)[0] == ["nba_raw.schedule: 3 rows clean, 4 here; dates 2023-10-24"]
    assert doubled["nba_raw.schedule"].duplicates == 1
    other_version = _warehouse(tmp_path / "d.duckdb", ROWS, [LEDGER[0], (*LEDGER[1][:5], "v2", *LEDGER[1][6:])])
    assert differences(clean, other_version)[0] == ["nba_ops.run_ledger: 2 rows clean, 2 here; dates 2023-10-25"]
    lines, _ = differences(clean, other_version, (tmp_path / "a.duckdb", tmp_path / "d.duckdb"))
    assert lines[1:] == [
        "  clean only: processor=schedule, game_date=2023-10-25, rows_written=1, input_fingerprint=fp2, code_version=v1",
        "  here only: processor=schedule, game_date=2023-10-25, rows_written=1, input_fingerprint=fp2, code_version=v2",
    ]


def test_floats_are_compared_to_ten_significant_digits(tmp_path):
    clean = _warehouse(tmp_path / "a.duckdb", ROWS, LEDGER)
    noise = _warehouse(tmp_path / "b.duckdb", [*ROWS[:2], ("0022300003", "2023-10-25", 104, 97.5 + 1e-12)], LEDGER)
    assert differences(clean, noise) == ([], [])


def test_kill_times_are_seeded_and_one_per_slice():
    times = _kill_times(5, 10.0, 60.0, seed=13)
    assert times == _kill_times(5, 10.0, 60.0, seed=13) != _kill_times(5, 10.0, 60.0, seed=14)
    assert sorted(int((t - 10) // 10) for t in times) == [0, 1, 2, 3, 4]


def test_what_was_running_is_read_from_the_output():
    lines = [
        (11.0, "INFO | Flow run 'backfill-a' - Beginning flow run 'backfill-a' for flow 'backfill'"),
        (12.0, "INFO | Flow run 'raw-a' - Beginning subflow run 'raw-a' for flow 'raw'"),
        (15.0, "INFO | Flow run 'raw-a' - Finished in state Completed()"),
        (16.0, "INFO | Flow run 'validate-raw-a' - Beginning subflow run 'validate-raw-a' for flow 'validate'"),
    ]
    assert running_at(lines, 5.0) == "start-up"
    assert running_at(lines, 13.0) == "raw-a"
    assert running_at(lines, 11.5) == "backfill-a, planning"
    assert running_at(lines, 15.5) == "backfill-a, after raw-a"
    assert running_at(lines, 20.0) == "validate-raw-a"
    assert timeline(lines) == [("raw-a", 12.0, 15.0)]


def test_a_difference_comes_with_rows_of_each_side(tmp_path):
    clean = _warehouse(tmp_path / "a.duckdb", ROWS, LEDGER)
    changed = _warehouse(tmp_path / "b.duckdb", [*ROWS[:2], ("0022300003", "2023-10-25", 104, 97.6)], LEDGER)
    lines, notes = differences(clean, changed, (tmp_path / "a.duckdb", tmp_path / "b.duckdb"))
    assert lines[1:] == ["  1 float values differ, at most 1.0e-03 relative; e.g. game_id=0022300003, "
                         "game_date=2023-10-25: pace 97.5 vs 97.6"] and notes == []  # fmt: skip
    doubled = _warehouse(tmp_path / "c.duckdb", [*ROWS, ROWS[0]], LEDGER)
    lines, _ = differences(clean, doubled, (tmp_path / "a.duckdb", tmp_path / "c.duckdb"))
    assert lines[1:] == ["  here only: game_id=0022300001, game_date=2023-10-24, home_pts=119, pace=101.25"]


def test_floats_apart_only_by_summation_order_are_a_note(tmp_path):
    clean = _warehouse(tmp_path / "a.duckdb", ROWS, LEDGER)
    # 0.1 + 0.2 + 0.3 summed in another order: a last-bit gap that rounding to 10 digits may not hide
    x, y = (0.1 + 0.2) + 0.3, 0.1 + (0.2 + 0.3)
    assert x != y
    a = _warehouse(tmp_path / "b.duckdb", [*ROWS[:2], ("0022300003", "2023-10-25", 104, x)], LEDGER)
    b = _warehouse(tmp_path / "c.duckdb", [*ROWS[:2], ("0022300003", "2023-10-25", 104, y)], LEDGER)
    object.__setattr__(b["nba_raw.schedule"], "digest", "forced")  # as if the rounding had split them
    lines, notes = differences(a, b, (tmp_path / "b.duckdb", tmp_path / "c.duckdb"))
    assert lines == [] and len(notes) == 1 and "float noise only: 1 float values differ, at most 1.9e-16" in notes[0]


def test_validation_samples_in_another_row_order_are_a_note_not_a_difference(tmp_path):
    def with_sample(path, sample):
        sums = _warehouse(path, ROWS, LEDGER)
        con = duckdb.connect(str(path))
        con.execute("CREATE TABLE nba_ops.validation_results (validation_id VARCHAR, phase VARCHAR, "
                    "check_name VARCHAR, sample VARCHAR, checked_at TIMESTAMP)")  # fmt: skip
        con.execute("INSERT INTO nba_ops.validation_results VALUES (uuid(), 'raw', 'fga', ?, now())", [sample])
        con.close()
        return table_sums(path)

    clean = with_sample(tmp_path / "a.duckdb", '[{"game_id": "1"}, {"game_id": "2"}]')
    flipped = with_sample(tmp_path / "b.duckdb", '[{"game_id": "2"}, {"game_id": "1"}]')
    other = with_sample(tmp_path / "c.duckdb", '[{"game_id": "3"}, {"game_id": "1"}]')
    assert differences(clean, flipped) == ([], []) and order_only(clean, flipped) == ["nba_ops.validation_results"]
    assert differences(clean, other)[0] == ["nba_ops.validation_results: 1 rows clean, 1 here"]
