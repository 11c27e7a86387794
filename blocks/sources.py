"""Sources: where raw box scores, schedules and shots come from, one interface.

A source returns, for one game date and one source table, the rows in the *source layout*:
NBA.com's upper-case column names as in the bundled season files (see data/nba/*/README.md),
every value as text exactly as received. Typing and checking happen at load, so the landing
copy is what the source said, not what we made of it.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import threading
import zlib
from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pandas as pd
import tenacity
from prefect.blocks.core import Block
from prefect.context import TaskRunContext
from prefect.utilities.math import clamped_poisson_interval
from pydantic import Field

from blocks.logs import run_logger

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
    # ESPN's team box (a second provider, for reconciliation): hoopR's names, as received.
    "espn_team_box": (
        "game_id", "season", "season_type", "game_date", "game_date_time", "team_id",
        "team_abbreviation", "team_display_name", "team_home_away", "team_score", "team_winner",
        "field_goals_made", "field_goals_attempted", "field_goal_pct",
        "three_point_field_goals_made", "three_point_field_goals_attempted",
        "three_point_field_goal_pct", "free_throws_made", "free_throws_attempted",
        "free_throw_pct", "offensive_rebounds", "defensive_rebounds", "total_rebounds",
        "assists", "steals", "blocks", "turnovers", "team_turnovers", "total_turnovers", "fouls",
        "technical_fouls", "total_technical_fouls", "flagrant_fouls", "fast_break_points",
        "points_in_paint", "turnover_points", "largest_lead", "opponent_team_id",
        "opponent_team_abbreviation", "opponent_team_score",
    ),
}  # fmt: skip
ESPN_TABLE = "espn_team_box"
# The column holding each row's game date (and its game), per source table.
DATE_COLUMN: dict[str, tuple[str, str]] = {ESPN_TABLE: ("game_date", "game_id")}


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
    run_logger().warning("%s: %s; retry %d of %d in %.1f s", getattr(state.fn, "__qualname__", "source call"), exc,
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

    def game_dates(self, start: date, end: date) -> list[date]:
        self._maybe_fail("game_dates", start, end)
        return sorted(d for d in _schedule_dates(self._season_files("schedule"), start, end) if start <= d <= end)

    def season_start(self, game_date: date) -> date:
        self._maybe_fail("season_start", game_date)
        # A season is a folder: its schedule's first date on or before the date.
        firsts = []
        for schedule in self._season_files("schedule"):
            dates = _schedule_dates((schedule,), game_date, game_date)  # unreadable and maybe its: raises
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
        return _fingerprint_of(table, game_date, self._season_files(table))

    def fetch_csv(self, table: str, game_date: date) -> bytes:
        self._maybe_fail("fetch_csv", table, game_date)
        # Planning hashes every date's file and the raw phase lands it: write it once.
        return _csv_of_date(table, game_date, self._season_files(table))


class EspnTeamBoxSource(Source):
    """ESPN's team box scores, the second provider that reconciliation checks NBA.com
    against: `<espn_dir>/<season>/team_box.csv.gz` (see data/espn/*/README.md), one table
    (`espn_team_box`), its `game_date` the US-Eastern date. A season without a folder is not
    an error: ESPN is then *not available* for its dates (`covers`), and reconciliation says so."""

    _block_type_name = "hoopflow espn team box source"
    name: ClassVar[str] = "espn"

    espn_dir: str = Field(description="Folder with one sub-folder per season holding team_box.csv.gz.")

    def _files(self) -> Files:
        root = Path(self.espn_dir)
        paths = sorted(p / "team_box.csv.gz" for p in root.iterdir() if (p / "team_box.csv.gz").is_file()) \
            if root.is_dir() else []  # fmt: skip
        return tuple((str(p), (st := p.stat()).st_mtime_ns, st.st_size) for p in paths)

    def _check(self, table: str) -> None:
        if table != ESPN_TABLE:
            raise ValueError(f"unknown ESPN source table {table!r}; expected {ESPN_TABLE!r}")

    def covers(self, game_date: date) -> bool:
        """Whether ESPN data exists for the date's season (a folder whose season spans it)."""
        return any(_may_cover(path, game_date, game_date) for path, _, _ in self._files())

    def game_dates(self, start: date, end: date) -> list[date]:
        dates: set[date] = set()
        for path, mtime_ns, size in self._files():
            if _may_cover(path, start, end):
                dates |= _read_season_file(path, mtime_ns, size, *DATE_COLUMN[ESPN_TABLE]).dates()
        return sorted(d for d in dates if start <= d <= end)

    def season_start(self, game_date: date) -> date:
        for path, mtime_ns, size in self._files():
            if _may_cover(path, game_date, game_date):
                dates = _read_season_file(path, mtime_ns, size, *DATE_COLUMN[ESPN_TABLE]).dates()
                if dates and min(dates) <= game_date:
                    return min(dates)
        raise ValueError(f"{self.espn_dir}: no ESPN season starts on or before {game_date}")

    def fetch(self, table: str, game_date: date) -> pd.DataFrame:
        self._check(table)
        return _rows_of(table, game_date, self._files())

    def fingerprint(self, table: str, game_date: date) -> str:
        self._check(table)
        files = self._files()
        if not any(_may_cover(path, game_date, game_date) for path, _, _ in files):
            return "unavailable"
        return _fingerprint_of(table, game_date, files)

    def fetch_csv(self, table: str, game_date: date) -> bytes:
        self._check(table)
        return _csv_of_date(table, game_date, self._files())


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


Files = tuple[tuple[str, int, int], ...]  # each season's file of a table, with its stat


def _schedule_dates(schedules: Files, start: date, end: date) -> set[date]:
    """The scheduled dates of every season; a schedule that cannot be read stops a range that
    its season may cover (its dates are unknown), not the other seasons' ranges."""
    dates: set[date] = set()
    for path, mtime_ns, size in schedules:
        f = _read_season_file(path, mtime_ns, size)
        if f.unreadable:
            if _may_cover(path, start, end):
                raise SourceFileError(f"{f.unreadable}: the game dates of season {Path(path).parent.name} are unknown")
            continue
        dates |= f.dates()
    return dates


def _may_cover(path: str, start: date, end: date) -> bool:
    """Whether the season of a file's folder may hold dates in [start, end]: August 1 to
    July 31 of a `2023-24` folder; any date for a folder named otherwise."""
    label = Path(path).parent.name
    if not (len(label) == 7 and label[4] == "-" and label[:4].isdigit()):
        return True
    first = int(label[:4])
    return date(first, 8, 1) <= end and start <= date(first + 1, 7, 31)


def _season_covers(path: str, game_date: date) -> bool:
    """Whether the date is the season's of a file's folder: in its schedule, or in its span
    when the schedule itself cannot be read (or there is none: ESPN's folder)."""
    schedule = Path(path).with_name("schedule.csv.gz")
    if not schedule.is_file():
        return _may_cover(path, game_date, game_date)
    stat = schedule.stat()
    season = _read_season_file(str(schedule), stat.st_mtime_ns, stat.st_size)
    if season.unreadable:
        return _may_cover(path, game_date, game_date)
    return game_date in season.dates()


def _rows_of(table: str, game_date: date, files: Files) -> pd.DataFrame:
    """The date's rows of `table`; a SourceFileError when its season's file, or the date's
    rows in it, cannot be read (the other dates and seasons are not affected)."""
    columns = DATE_COLUMN.get(table, ())  # NBA.com's files: the defaults, one cache entry per file
    for path, mtime_ns, size in files:
        f = _read_season_file(path, mtime_ns, size, *columns)
        if game_date in f.problems:
            raise SourceFileError(f"{path} (game date {game_date}): {f.problems[game_date]}")
        if f.unreadable:
            if _season_covers(path, game_date):
                raise SourceFileError(f"{f.unreadable} (game date {game_date})")
            continue
        if game_date in f.by_date:
            return f.by_date[game_date].reset_index(drop=True)
    return pd.DataFrame(columns=list(SOURCE_COLUMNS[table]), dtype="object")


def _fingerprint_of(table: str, game_date: date, files: Files) -> str:
    """The hash of exactly the bytes an extract would land: an edit to one date of a season
    file re-extracts that date only. A date whose rows cannot be read still has a
    fingerprint (planning goes on); its extract fails with the file's error."""
    try:
        data = _csv_of_date(table, game_date, files)
    except SourceFileError as exc:
        return "unreadable:" + hashlib.sha256(str(exc).encode()).hexdigest()
    return hashlib.sha256(data).hexdigest()


@lru_cache(maxsize=4096)
def _csv_of_date(table: str, game_date: date, files: Files) -> bytes:
    """The date's rows of one table as a CSV file, keyed on the season files' stat (an
    unreadable file raises, which is never cached)."""
    return to_csv_bytes(_rows_of(table, game_date, files))


class SourceFileError(ValueError):
    """A source file, or one date's rows in it, cannot be read (never retried): names the file,
    the date and what is wrong."""


@dataclass(frozen=True)
class SeasonFile:
    """One season file split by GAME_DATE, with what could not be read: whole (`unreadable`:
    a truncated or empty gzip, no header, ragged rows) or one date's rows (`problems`: bytes
    that are not UTF-8). Rows keep their text exactly (a date in another format, such as
    10/27/2023, is filed under its date and refused, by field, when the date is loaded)."""

    path: str
    by_date: dict[date, pd.DataFrame]
    problems: dict[date, str]
    unreadable: str | None = None

    def dates(self) -> set[date]:
        return set(self.by_date) | set(self.problems)


@lru_cache(maxsize=16)
def _read_season_file(
    path: str, mtime_ns: int, size: int, date_column: str = "GAME_DATE", game_column: str = "GAME_ID"
) -> SeasonFile:
    """Read once per process (keyed on the file's stat), split by `date_column`."""
    try:
        with gzip.open(path) as fh:
            data = fh.read()
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
        return SeasonFile(path, {}, {}, f"{path}: cannot be read: not a complete gzip file ({exc})")
    text, bad_lines = _decoded(data)
    try:
        df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        return SeasonFile(path, {}, {}, f"{path}: cannot be read as CSV: {str(exc).strip()}")
    if date_column not in df.columns:
        return SeasonFile(path, {}, {}, f"{path}: cannot be read: no {date_column} column (header: {list(df.columns)[:8]})")
    days = _row_dates(df, date_column, game_column)
    if days.isna().any():
        lines = [f"line {i + 2}: {v!r}" for i, v in zip(df.index[days.isna()][:3], df[date_column][days.isna()][:3], strict=True)]
        return SeasonFile(path, {}, {}, f"{path}: cannot be read: {int(days.isna().sum())} rows have no readable "
                                        f"{date_column} ({', '.join(lines)}), so no date's rows are known to be whole")  # fmt: skip
    by_date = {d.date(): g.reset_index(drop=True) for d, g in df.groupby(days, sort=True)}
    problems: dict[date, str] = {}
    for line, message in bad_lines:  # line 1 is the header
        if line >= 2 and line - 2 < len(df):
            problems.setdefault(days.iloc[line - 2].date(), f"line {line}: {message}")
        else:
            return SeasonFile(path, {}, {}, f"{path}: cannot be read: line {line}: {message}")
    for d in problems:
        by_date.pop(d, None)
    return SeasonFile(path, by_date, problems)


def _decoded(data: bytes) -> tuple[str, list[tuple[int, str]]]:
    """The file as text, and each line that is not UTF-8 (its number and the first bad byte)."""
    try:
        return data.decode("utf-8"), []
    except UnicodeDecodeError:
        pass
    bad = []
    for n, line in enumerate(data.split(b"\n"), start=1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad.append((n, f"byte 0x{line[exc.start]:02x} at column {exc.start + 1} is not UTF-8"))
    return data.decode("utf-8", errors="replace"), bad


def _row_dates(df: pd.DataFrame, date_column: str = "GAME_DATE", game_column: str = "GAME_ID") -> pd.Series:
    """Each row's game date: YYYY-MM-DD, else any unambiguous spelling of a date (its text
    stays as it is, for the load to refuse), else the date of its game's other rows."""
    days = pd.to_datetime(df[date_column], format="%Y-%m-%d", errors="coerce")
    if days.isna().any():
        other = pd.to_datetime(df[date_column][days.isna()], format="mixed", errors="coerce")
        days = days.fillna(other)
    if days.isna().any() and game_column in df.columns:
        by_game = days.groupby(df[game_column]).transform("first")
        days = days.fillna(by_game)
    return days