"""Plain functions of the backfill: fan-out chunks."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from engine.runner import chunk_dates


def _d(day: int) -> date:
    return date(2023, 10, 24) + timedelta(days=day)


def test_chunks_span_at_most_chunk_days_calendar_days_and_keep_every_date_once():
    dates = [_d(i) for i in (0, 1, 2, 5, 6, 7, 8, 20)]
    chunks = chunk_dates(dates, 3)
    assert chunks == [[_d(0), _d(1), _d(2)], [_d(5), _d(6), _d(7)], [_d(8)], [_d(20)]]
    assert [d for c in chunks for d in c] == sorted(dates)
    assert all((c[-1] - c[0]).days < 3 for c in chunks)


def test_one_day_chunks_and_bad_sizes():
    assert chunk_dates([_d(1), _d(0)], 1) == [[_d(0)], [_d(1)]]
    assert chunk_dates([], 7) == []
    with pytest.raises(ValueError, match="chunk_days"):
        chunk_dates([_d(0)], 0)
