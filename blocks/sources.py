"""Sources: where raw box scores, schedules and shots come from, one interface.

A source returns, for one game date and one source table, the rows in the *source layout*:
NBA.com's upper-case column names as in the bundled season files (see data/nba/*/README.md),
every value as text exactly as received. Typing and checking happen at load, so the landing
copy is what the source said, not what we made of it.
"""

from __future__ import annotations

import hashlib
from abc import abstractmethod
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import ClassVar

import pandas as pd
from prefect.blocks.core import Block
from pydantic import Field

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


class Source(Block):
    """One game date of one source table at a time."""

    _block_schema_capabilities: ClassVar[list[str]] = ["nba-source"]
    name: ClassVar[str] = ""

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

    def fetch_csv(self, table: str, game_date: date) -> bytes:
        """`fetch` as the CSV file that lands (what the raw phase writes to the landing zone)."""
        return to_csv_bytes(self.fetch(table, game_date))


class BundledSeasonSource(Source):
    """Season folders on disk: `<source_dir>/<season>/{player_box,schedule,shots}.csv.gz`."""

    _block_type_name = "hoopflow bundled season source"
    name: ClassVar[str] = "bundled"

    source_dir: str = Field(description="Folder with one sub-folder per season.")

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
        return sorted(d for d in self._by_date("schedule") if start <= d <= end)

    def season_start(self, game_date: date) -> date:
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
        return _rows_of(table, game_date, self._season_files(table))

    def fingerprint(self, table: str, game_date: date) -> str:
        # The hash of exactly the bytes an extract would land: an edit to one date of a
        # season file re-extracts that date only.
        return hashlib.sha256(self.fetch_csv(table, game_date)).hexdigest()

    def fetch_csv(self, table: str, game_date: date) -> bytes:
        # Planning hashes every date's file and the raw phase lands it: write it once.
        return _csv_of_date(table, game_date, self._season_files(table))


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
