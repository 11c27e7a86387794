"""Date write locks through a real temporary Prefect API: a second writer of a date waits for
the first; a writer of another date does not."""

from __future__ import annotations

import threading
import time
from datetime import date, timedelta

from blocks.settings import reset_settings
from engine.locks import WRITE_LOCK_LANES, date_write_lock, ensure_write_locks, write_lock_name

DAY = date(2024, 1, 15)


def test_same_date_same_lock_consecutive_dates_different_locks():
    assert write_lock_name(DAY) == write_lock_name(DAY + timedelta(days=WRITE_LOCK_LANES))
    names = {write_lock_name(DAY + timedelta(days=i)) for i in range(WRITE_LOCK_LANES)}
    assert len(names) == WRITE_LOCK_LANES


def test_a_second_writer_of_a_date_waits_for_the_first(prefect_api, monkeypatch):
    monkeypatch.setenv("HOOPFLOW_WRITE_LOCKS", "true")
    reset_settings()
    ensure_write_locks()
    acquired: dict[date, float] = {}

    def writer(d: date) -> None:
        with date_write_lock(d):
            acquired[d] = time.monotonic()

    with date_write_lock(DAY):
        released = time.monotonic() + 3.0
        same, other = (threading.Thread(target=writer, args=(d,)) for d in (DAY, DAY + timedelta(days=1)))
        same.start()
        other.start()
        other.join(timeout=60)
        assert DAY + timedelta(days=1) in acquired  # another date: no wait
        time.sleep(max(0.0, released - time.monotonic()))
        assert DAY not in acquired  # the same date: still waiting
        released = time.monotonic()
    same.join(timeout=120)
    assert acquired[DAY] >= released
    reset_settings()
