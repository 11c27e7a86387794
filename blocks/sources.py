"""Sources: where raw box scores, schedules and shots come from, one interface.

A source returns, for one game date and one source table, the rows in the *source layout*:
NBA.com's upper-case column names as in the bundled season files (see data/nba/*/README.md),
every value as text exactly as received. Typing and checking happen at load, so the landing
copy is what the source said, not what we made of it.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
from abc import abstractmethod
from collections.abc import Callable
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pandas as pd
import tenacity
from prefect.blocks.core import Block
from prefect.context import TaskRunContext
from prefect.logging import get_run_logger
from prefect.utilities.math import clamped_poisson_interval
from pydantic import Field

T = TypeVar("T")

SOURCE_TABLES = ("schedule", "player_box", "shots")

SOURCE_COLUMNS: dict[str, tuple[str, ...]] = {
    "schedule": (
        "SEASON", "GAME_ID", "GAME_DATE", "HOME_TEAM_ID", "HOME_TEAM_ABBREVIATION",
        "HOME_TEAM_NAME", "AWAY_TEAM_ID", "AWAY_TEAM_ABBREVIATION", "AWAY_TEAM_NAME",
        "HOME_PTS", "AWAY_PTS", "WINNER", "NUM_OT",
    ),
    "player_box": (
        "SEASON", "SEASON_ID", "GAME_ID", "GAME_DATE", "MATCHUP", "HOME_AWAY", "TEAM_ID",
        "TEAM_ABBREVIATION", "TEAM_NAME", "OPP_TEAM_ID", "OPP_TEAM_ABBREVIATION", "WL",
        "PLAYER_ID", "PLAYER_NAME", "MIN", "PTS", "FGM", "FGA", "FG_PCT", "FG3M", "FG3A",
        "FG3_PCT", "FTM", "FTA", "FT_PCT", "OREB", "DREB", "REB", "AST", "STL", "BLK", "TOV",
        "PF", "PLUS_MINUS",
    ),
    "shots": (
        "GAME_ID", "GAME_DATE", "TEAM_ID", "PLAYER_ID", "PERIOD", "MINS_LEFT", "SECS_LEFT",
        "SHOT_MADE", "SHOT_TYPE", "ACTION_TYPE", "BASIC_ZONE", "ZONE_NAME", "ZONE_RANGE",
        "LOC_X", "LOC_Y", "SHOT_DISTANCE",
    ),
}  # fmt: skip


def to_csv_bytes(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False, lineterminator="\n").encode("utf-8")


class TransientSourceError(Exception):
    """A failure worth retrying: timeout, connection reset, HTTP 429 or 5xx."""


class MalformedPayloadError(ValueError):
    """The source answered, but not with what its contract promises; retrying will not help."""


# One retry policy wherever a source is called (DESIGN §5): transient errors only, 4 retries
# after 2, 4, 8 and 16 s, each delay drawn by Prefect's clamped Poisson jitter (about 0.63× to
# 1.5× of it). The processor tasks that call a source carry it as their Prefect retry policy
# (engine.policies.TRANSIENT_RETRIES); every other call (planning's schedule, season starts
# and fingerprints, in flows and the CLI) is retried here, with tenacity, by the same numbers.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (TransientSourceError, TimeoutError, ConnectionError)
RETRY_DELAYS: tuple[float, ...] = (2, 4, 8, 16)
RETRY_JITTER = 0.5
SOURCE_CALLS = ("game_dates", "season_start", "fetch", "fingerprint", "fetch_csv")
_retrying_here = threading.local()


def retry_delay(retry: int) -> float:
    """The pause before retry `retry` (1-based), jittered as Prefect jitters task retries
    (tenacity asks once more after the last attempt: the last delay)."""
    return clamped_poisson_interval(RETRY_DELAYS[min(retry, len(RETRY_DELAYS)) - 1], RETRY_JITTER)


def _in_retrying_task() -> bool:
    ctx = TaskRunContext.get()
    return ctx is not None and bool(ctx.task.retries)


def _log_retry(state: tenacity.RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    try:
        logger: logging.Logger | logging.LoggerAdapter = get_run_logger()
    except Exception:  # no flow or task run
        logger = logging.getLogger("hoopflow.sources")
    logger.warning("%s: %s; retry %d of %d in %.1f s", getattr(state.fn, "__qualname__", "source call"), exc,
                   state.attempt_number, len(RETRY_DELAYS), state.upcoming_sleep)  # fmt: skip


def _retried(fn: Callable[..., T]) -> Callable[..., T]:
    """A source call, retried on transient errors by the policy above: not inside a task that
    retries by itself, nor inside another retried call (the outer one retries the whole);
    the last attempt's error is raised as it was."""

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> T:
        if getattr(_retrying_here, "active", False) or _in_retrying_task():
            return fn(*args, **kwargs)
        _retrying_here.active = True
        try:
            return tenacity.Retrying(
                retry=tenacity.retry_if_exception_type(TRANSIENT_ERRORS),
                stop=tenacity.stop_after_attempt(len(RETRY_DELAYS) + 1),
                wait=lambda state: retry_delay(state.attempt_number),
                before_sleep=_log_retry,
                reraise=True,
            )(fn, *args, **kwargs)
        finally:
            _retrying_here.active = False

    return call


class Source(Block):
    """One game date of one source table at a time. Every implementation's source calls are
    retried on transient errors (`_retried`, applied to each subclass's SOURCE_CALLS)."""

    _block_schema_capabilities: ClassVar[list[str]] = ["nba-source"]
    name: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for call in SOURCE_CALLS:
            if call in cls.__dict__:
                setattr(cls, call, _retried(cls.__dict__[call]))

    @abstractmethod
    def game_dates(self, start: date, end: date) -> list[date]:
        """Dates in [start, end] with at least one regular-season game, ascending."""

    @abstractmethod
    def season_start(self, game_date: date) -> date:
        """The first regular-season game date of the season `game_date` belongs to."""

    @abstractmethod
    def fetch(self, table: str, game_date: date) -> pd.DataFrame:
        """Rows of `table` (one of SOURCE_TABLES) for the date, in the source layout, as text."""

    @abstractmethod
    def fingerprint(self, table: str, game_date: date) -> str:
        """Changes whenever what `fetch(table, game_date)` returns may have changed."""

    @_retried
    def fetch_csv(self, table: str, game_date: date) -> bytes:
        """`fetch` as the CSV file that lands (what the raw phase writes to the landing zone)."""
        return to_csv_bytes(self.fetch(table, game_date))


class BundledSeasonSource(Source):
    """Season folders on disk: `<source_dir>/<season>/{player_box,schedule,shots}.csv.gz`.

    With `fault_rate` > 0 (HOOPFLOW_SOURCE_FAULT_RATE; `make chaos --faults`) every public
    call fails with a TransientSourceError at that rate, like a flaky API: seeded, see
    `injected_fault`."""

    _block_type_name = "hoopflow bundled season source"
    name: ClassVar[str] = "bundled"

    source_dir: str = Field(description="Folder with one sub-folder per season.")
    fault_rate: float = Field(default=0.0, ge=0.0, le=1.0,
                              description="Share of source calls that fail with an injected transient error.")  # fmt: skip
    fault_seed: int = Field(default=0, description="Seed of the injected faults.")
    fault_calls: str = Field(default="", description="Comma-separated calls that may fail (empty: every call).")

    def _maybe_fail(self, call: str, *args: object) -> None:
        if self.fault_rate > 0 and (not self.fault_calls or call in self.fault_calls.split(",")):
            injected_fault(self.fault_rate, self.fault_seed, call, *args)

    def _season_dirs(self) -> list[Path]:
        root = Path(self.source_dir)
        dirs = sorted(p for p in root.iterdir() if (p / "schedule.csv.gz").is_file()) if root.is_dir() else []
        if not dirs:
            raise FileNotFoundError(
                f"{root}: no season folder with schedule.csv.gz, player_box.csv.gz, shots.csv.gz"
            )
        return dirs

    def _season_files(self, table: str) -> tuple[tuple[str, int, int], ...]:
        """Each season's file of `table` with its stat (the key of what was read from it)."""
        if table not in SOURCE_TABLES:
            raise ValueError(f"unknown source table {table!r}; expected one of {SOURCE_TABLES}")
        files = []
        for season_dir in self._season_dirs():
            path = season_dir / f"{table}.csv.gz"
            if not path.is_file():
                raise FileNotFoundError(f"{path}: missing source file for season {season_dir.name}")
            stat = path.stat()
            files.append((str(path), stat.st_mtime_ns, stat.st_size))
        return tuple(files)

    def _by_date(self, table: str) -> dict[date, pd.DataFrame]:
        return _merged(self._season_files(table))

    def game_dates(self, start: date, end: date) -> list[date]:
        self._maybe_fail("game_dates", start, end)
        return sorted(d for d in self._by_date("schedule") if start <= d <= end)

    def season_start(self, game_date: date) -> date:
        self._maybe_fail("season_start", game_date)
        # A season is a folder: its schedule's first date on or before the date.
        firsts = []
        for season_dir in self._season_dirs():
            path = season_dir / "schedule.csv.gz"
            stat = path.stat()
            dates = _read_by_date(str(path), stat.st_mtime_ns, stat.st_size)
            if dates:
                firsts.append(min(dates))
        starts = [d for d in firsts if d <= game_date]
        if not starts:
            raise ValueError(f"{self.source_dir}: no season starts on or before {game_date}")
        return max(starts)

    def fetch(self, table: str, game_date: date) -> pd.DataFrame:
        self._maybe_fail("fetch", table, game_date)
        return _rows_of(table, game_date, self._season_files(table))

    def fingerprint(self, table: str, game_date: date) -> str:
        self._maybe_fail("fingerprint", table, game_date)
        # The hash of exactly the bytes an extract would land: an edit to one date of a
        # season file re-extracts that date only.
        return hashlib.sha256(_csv_of_date(table, game_date, self._season_files(table))).hexdigest()

    def fetch_csv(self, table: str, game_date: date) -> bytes:
        self._maybe_fail("fetch_csv", table, game_date)
        # Planning hashes every date's file and the raw phase lands it: write it once.
        return _csv_of_date(table, game_date, self._season_files(table))


# ---------------------------------------------------------------- injected faults (make chaos)

_fault_calls: dict[tuple[str, ...], int] = {}
_fault_lock = threading.Lock()


def injected_fault(rate: float, seed: int, call: str, *args: object) -> None:
    """Raise a TransientSourceError for `rate` of the calls, seeded: the n-th call of
    `call(*args)` in a process fails or not by a hash of (seed, call, args, n) alone, so the
    same seed gives the same faults whatever the threads' order, and a retry of a failed call
    (its n+1-th) draws again. Counted per process: a new process starts from call 1."""
    key = (str(seed), call, *map(str, args))
    with _fault_lock:
        n = _fault_calls[key] = _fault_calls.get(key, 0) + 1
    draw = int.from_bytes(hashlib.sha256("|".join((*key, str(n))).encode()).digest()[:8], "big") / 2**64
    if draw < rate:
        raise TransientSourceError(
            f"injected transient fault: {call}({', '.join(map(str, args))}) failed on call {n} "
            f"(HOOPFLOW_SOURCE_FAULT_RATE={rate:g}, HOOPFLOW_SOURCE_FAULT_SEED={seed})"
        )


def reset_injected_faults() -> None:
    """Forget the calls counted so far (a test starting from call 1 again)."""
    with _fault_lock:
        _fault_calls.clear()


def _merged(files: tuple[tuple[str, int, int], ...]) -> dict[date, pd.DataFrame]:
    frames: dict[date, pd.DataFrame] = {}
    for path, mtime_ns, size in files:
        frames.update(_read_by_date(path, mtime_ns, size))
    return frames


def _rows_of(table: str, game_date: date, files: tuple[tuple[str, int, int], ...]) -> pd.DataFrame:
    rows = _merged(files).get(game_date)
    if rows is None:
        return pd.DataFrame(columns=list(SOURCE_COLUMNS[table]), dtype="object")
    return rows.reset_index(drop=True)


@lru_cache(maxsize=4096)
def _csv_of_date(table: str, game_date: date, files: tuple[tuple[str, int, int], ...]) -> bytes:
    """The date's rows of one table as a CSV file, keyed on the season files' stat."""
    return to_csv_bytes(_rows_of(table, game_date, files))


@lru_cache(maxsize=16)
def _read_by_date(path: str, mtime_ns: int, size: int) -> dict[date, pd.DataFrame]:
    """One season file split by GAME_DATE, read once per process (keyed on the file's stat)."""
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    if "GAME_DATE" not in df.columns:
        raise ValueError(f"{path}: no GAME_DATE column")
    return {
        date.fromisoformat(str(d)): g.reset_index(drop=True)
        for d, g in df.groupby("GAME_DATE", sort=True)
    }
