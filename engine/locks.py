"""Date write locks: two flow runs (the daily run and a backfill chunk, say) never write the
same game date at once. Each phase flow holds its date's lock while it runs.

A lock is a Prefect global concurrency limit of one slot. One limit per date would leave
hundreds in the UI, so dates share WRITE_LOCK_LANES limits by day number: the same date
always takes the same limit, and consecutive dates take different ones, so the chunks of
a fanned-out backfill still run side by side."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

from prefect.client.orchestration import get_client
from prefect.concurrency.sync import concurrency

from blocks.settings import get_settings

WRITE_LOCK_LANES = 16
WRITE_LOCK_PREFIX = "hoopflow-date-writes"
LEASE_SECONDS = 60
WAIT_SECONDS = 900  # a date takes seconds to write; waiting this long means a stuck holder


def write_lock_name(game_date: date) -> str:
    return f"{WRITE_LOCK_PREFIX}-{game_date.toordinal() % WRITE_LOCK_LANES:02d}"


def write_lock_names() -> list[str]:
    return [f"{WRITE_LOCK_PREFIX}-{lane:02d}" for lane in range(WRITE_LOCK_LANES)]


def ensure_write_locks() -> list[str]:
    """Create the lock limits where missing (idempotent); the daily and backfill flows call
    this, so the locks hold even where `hoopflow setup` was not run."""
    names = write_lock_names()
    with get_client(sync_client=True) as client:
        existing = {limit.name for limit in client.read_global_concurrency_limits(limit=200)}
        for name in names:
            if name not in existing:
                client.upsert_global_concurrency_limit_by_name(name, limit=1)
    return names


class WriteLockTimeout(RuntimeError):
    """Another run has held a date's write lock for longer than any date takes to write."""


@contextmanager
def date_write_lock(game_date: date) -> Iterator[None]:
    """Hold the date's write lock, when settings turn the locks on (the deployments do).

    Off by default: the locks need a Prefect server that expires the lease of a process
    killed while holding one (its repossessor service). The ephemeral API of a CLI run and
    the test harness do not run it, so a killed run would leave its date locked for good;
    there, one process writes one DuckDB file at a time anyway. Where the limit does not
    exist (nothing created it), Prefect warns and the lock does not hold."""
    if not get_settings().write_locks:
        yield
        return
    name = write_lock_name(game_date)
    try:
        # The lease is renewed while the flow runs; a process killed mid-date frees the slot
        # when it lapses (the server checks every 15 s): about a minute, not the default five.
        with concurrency(name, occupy=1, strict=False, lease_duration=LEASE_SECONDS,
                         timeout_seconds=WAIT_SECONDS):  # fmt: skip
            yield
    except TimeoutError as exc:
        raise WriteLockTimeout(
            f"{game_date}: another run has held the write lock {name!r} for over {WAIT_SECONDS} s; "
            f"if no run is writing, free it with `prefect global-concurrency-limit update {name} "
            "--active-slots 0`"
        ) from exc
