"""BundledSeasonSource: season folders on disk, compared with pandas over the same CSVs."""

from __future__ import annotations

import re
from datetime import date

import pandas as pd
import pytest

from blocks.sources import SOURCE_COLUMNS, BundledSeasonSource, TransientSourceError, reset_injected_faults
from blocks.settings import BUNDLED_SOURCE_DIR

SOURCE = BundledSeasonSource(source_dir=str(BUNDLED_SOURCE_DIR))


@pytest.fixture(autouse=True)
def one_attempt(monkeypatch):
    """Each call's own outcome (an injected fault is one failed attempt); the retry policy
    around every source call is tested in test_source_retries.py."""
    import blocks.sources as sources

    monkeypatch.setattr(sources._retrying_here, "active", True, raising=False)


def test_game_dates_come_from_the_schedule(season_csv):
    expected = sorted(date.fromisoformat(d) for d in season_csv["schedule"].GAME_DATE.unique())
    assert SOURCE.game_dates(date.min, date.max) == expected
    assert SOURCE.game_dates(date(2023, 12, 24), date(2023, 12, 24)) == []  # no games


@pytest.mark.parametrize("table", ["schedule", "player_box", "shots"])
def test_fetch_returns_the_dates_rows_as_text(table, season_csv):
    day = date(2024, 1, 15)
    got = SOURCE.fetch(table, day)
    assert tuple(got.columns) == SOURCE_COLUMNS[table]
    expected = season_csv[table][season_csv[table].GAME_DATE == "2024-01-15"]
    assert len(got) == len(expected) > 0
    # Text exactly as in the file: zero-padded ids, blanks for absent percentages.
    assert got.GAME_ID.str.len().eq(10).all()
    first = pd.read_csv(BUNDLED_SOURCE_DIR / "2023-24" / f"{table}.csv.gz", dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(got, first[first.GAME_DATE == "2024-01-15"].reset_index(drop=True))


def test_fingerprint_changes_with_the_rows_only():
    a = SOURCE.fingerprint("shots", date(2024, 1, 15))
    assert a == SOURCE.fingerprint("shots", date(2024, 1, 15))
    assert a != SOURCE.fingerprint("shots", date(2024, 1, 16))


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no season folder"):
        BundledSeasonSource(source_dir=str(tmp_path)).game_dates(date.min, date.max)


# ---------------------------------------------------------------- injected faults (make chaos)


def _outcomes(source: BundledSeasonSource, calls: int = 60) -> list[str | None]:
    """The error message (or None) of each call of a fixed sequence of source calls."""
    out = []
    for i in range(calls):
        day = date(2024, 1, 1 + i % 20)
        call = [
            lambda: source.fetch_csv("shots", day),
            lambda: source.fingerprint("player_box", day),
            lambda: source.season_start(day),
            lambda: source.game_dates(day, date(2024, 1, 31)),
            lambda: source.fetch("schedule", day),
        ][i % 5]
        try:
            call()
            out.append(None)
        except TransientSourceError as exc:
            out.append(str(exc))
    return out


def test_injected_faults_are_seeded():
    flaky = BundledSeasonSource(source_dir=str(BUNDLED_SOURCE_DIR), fault_rate=0.3, fault_seed=7)
    reset_injected_faults()
    first = _outcomes(flaky)
    reset_injected_faults()
    assert _outcomes(flaky) == first  # same seed, same calls: the same faults
    assert 5 < sum(o is not None for o in first) < 35  # about 30% of 60
    other = _outcomes(BundledSeasonSource(source_dir=str(BUNDLED_SOURCE_DIR), fault_rate=0.3, fault_seed=8))
    assert other != first
    # A process counts each call: the same calls again (a retry) draw again.
    assert _outcomes(flaky) != first


def test_faults_only_in_the_calls_listed():
    reset_injected_faults()
    flaky = BundledSeasonSource(source_dir=str(BUNDLED_SOURCE_DIR), fault_rate=1.0, fault_calls="fetch_csv,fetch")
    assert flaky.fingerprint("shots", date(2024, 1, 15)) == SOURCE.fingerprint("shots", date(2024, 1, 15))
    assert flaky.game_dates(date(2024, 1, 15), date(2024, 1, 15)) == [date(2024, 1, 15)]
    with pytest.raises(TransientSourceError, match=re.escape("fetch_csv(shots, 2024-01-15)")):
        flaky.fetch_csv("shots", date(2024, 1, 15))


def test_fault_rate_zero_never_fails_and_one_always_fails():
    reset_injected_faults()
    assert _outcomes(BundledSeasonSource(source_dir=str(BUNDLED_SOURCE_DIR), fault_rate=0.0, fault_seed=7)) == [None] * 60
    assert None not in _outcomes(BundledSeasonSource(source_dir=str(BUNDLED_SOURCE_DIR), fault_rate=1.0))


@pytest.mark.parametrize(
    ("call", "args", "named"),
    [
        ("fetch_csv", ("shots", date(2024, 1, 15)), "fetch_csv(shots, 2024-01-15)"),
        ("fetch", ("player_box", date(2024, 1, 15)), "fetch(player_box, 2024-01-15)"),
        ("fingerprint", ("schedule", date(2024, 1, 15)), "fingerprint(schedule, 2024-01-15)"),
        ("season_start", (date(2024, 1, 15),), "season_start(2024-01-15)"),
        ("game_dates", (date(2024, 1, 1), date(2024, 1, 31)), "game_dates(2024-01-01, 2024-01-31)"),
    ],
)
def test_an_injected_fault_is_transient_and_names_the_call_and_date(call, args, named):
    reset_injected_faults()
    flaky = BundledSeasonSource(source_dir=str(BUNDLED_SOURCE_DIR), fault_rate=1.0, fault_seed=3)
    with pytest.raises(TransientSourceError, match=re.escape(named)) as caught:
        getattr(flaky, call)(*args)
    assert "HOOPFLOW_SOURCE_FAULT_RATE=1" in str(caught.value)


def test_fault_settings_reach_the_bundled_source(monkeypatch):
    from blocks.settings import Settings

    monkeypatch.setenv("HOOPFLOW_SOURCE_FAULT_RATE", "0.2")
    monkeypatch.setenv("HOOPFLOW_SOURCE_FAULT_SEED", "11")
    monkeypatch.setenv("HOOPFLOW_SOURCE_FAULT_CALLS", "fetch_csv")
    source = Settings().source_block()
    assert (source.fault_rate, source.fault_seed, source.fault_calls) == (0.2, 11, "fetch_csv")
    assert Settings(source_fault_rate=0).source_block().fault_rate == 0
