"""Raw phase: source → landing zone file (extract) → `nba_raw` tables (load).

The plain functions (`parse_landing_file`, `check_references`, `raw_frames`) hold every rule
about what a landing file must look like; the tasks only move bytes and call them.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timezone

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from blocks.sources import ESPN_TABLE, SOURCE_COLUMNS, SOURCE_TABLES
from blocks.warehouse import TableSpec, Warehouse
from engine.processors import Phase, Processor, ProcessorRun, Read
from tasks.teams import team_lookup

_PROVENANCE = (("ingested_at", "TIMESTAMP"), ("source", "STRING"))

RAW_SCHEDULE = TableSpec(
    dataset="nba_raw",
    name="schedule",
    columns=(
        ("season", "STRING"), ("game_id", "STRING"), ("game_date", "DATE"),
        ("home_team_id", "INT64"), ("home_team_abbreviation", "STRING"),
        ("home_team_name", "STRING"), ("away_team_id", "INT64"),
        ("away_team_abbreviation", "STRING"), ("away_team_name", "STRING"),
        ("home_pts", "INT64"), ("away_pts", "INT64"), ("winner", "STRING"), ("num_ot", "INT64"),
        *_PROVENANCE,
    ),
    cluster_by=("home_team_id", "away_team_id"),
    key=("game_id",),
    description="One row per regular-season game with its final score.",
)  # fmt: skip

RAW_PLAYER_BOXSCORES = TableSpec(
    dataset="nba_raw",
    name="player_boxscores",
    columns=(
        ("season", "STRING"), ("season_id", "INT64"), ("game_id", "STRING"), ("game_date", "DATE"),
        ("matchup", "STRING"), ("home_away", "STRING"), ("team_id", "INT64"),
        ("team_abbreviation", "STRING"), ("team_name", "STRING"), ("opp_team_id", "INT64"),
        ("opp_team_abbreviation", "STRING"), ("wl", "STRING"), ("player_id", "INT64"),
        ("player_name", "STRING"), ("min", "FLOAT64"), ("pts", "INT64"), ("fgm", "INT64"),
        ("fga", "INT64"), ("fg_pct", "FLOAT64"), ("fg3m", "INT64"), ("fg3a", "INT64"),
        ("fg3_pct", "FLOAT64"), ("ftm", "INT64"), ("fta", "INT64"), ("ft_pct", "FLOAT64"),
        ("oreb", "INT64"), ("dreb", "INT64"), ("reb", "INT64"), ("ast", "INT64"),
        ("stl", "INT64"), ("blk", "INT64"), ("tov", "INT64"), ("pf", "INT64"),
        ("plus_minus", "INT64"),
        *_PROVENANCE,
    ),
    cluster_by=("player_id", "team_id"),
    key=("game_id", "player_id"),
    description="One row per player per game (players who appeared).",
)  # fmt: skip

RAW_SHOTS = TableSpec(
    dataset="nba_raw",
    name="shots",
    columns=(
        ("game_id", "STRING"), ("game_date", "DATE"), ("team_id", "INT64"), ("player_id", "INT64"),
        ("period", "INT64"), ("mins_left", "INT64"), ("secs_left", "INT64"),
        ("shot_made", "INT64"), ("shot_type", "STRING"), ("action_type", "STRING"),
        ("basic_zone", "STRING"), ("zone_name", "STRING"), ("zone_range", "STRING"),
        ("loc_x", "FLOAT64"), ("loc_y", "FLOAT64"), ("shot_distance", "INT64"),
        *_PROVENANCE,
    ),
    cluster_by=("player_id", "team_id"),
    # No key: the shot chart has no event id, and real files hold identical rows
    # (two tip-ins by one player in the same second), so exact duplicates are kept.
    description="One row per field-goal attempt.",
)  # fmt: skip

RAW_ESPN_TEAM_BOXSCORES = TableSpec(
    dataset="nba_raw",
    name="espn_team_boxscores",
    columns=(
        ("game_id", "STRING"), ("season", "INT64"), ("season_type", "INT64"), ("game_date", "DATE"),
        ("game_date_time", "STRING"), ("team_id", "INT64"), ("team_abbreviation", "STRING"),
        ("team_display_name", "STRING"), ("team_home_away", "STRING"), ("team_score", "INT64"),
        ("team_winner", "STRING"), ("field_goals_made", "INT64"), ("field_goals_attempted", "INT64"),
        ("field_goal_pct", "FLOAT64"), ("three_point_field_goals_made", "INT64"),
        ("three_point_field_goals_attempted", "INT64"), ("three_point_field_goal_pct", "FLOAT64"),
        ("free_throws_made", "INT64"), ("free_throws_attempted", "INT64"), ("free_throw_pct", "FLOAT64"),
        ("offensive_rebounds", "INT64"), ("defensive_rebounds", "INT64"), ("total_rebounds", "INT64"),
        ("assists", "INT64"), ("steals", "INT64"), ("blocks", "INT64"), ("turnovers", "INT64"),
        ("team_turnovers", "INT64"), ("total_turnovers", "INT64"), ("fouls", "INT64"),
        ("technical_fouls", "INT64"), ("total_technical_fouls", "INT64"), ("flagrant_fouls", "INT64"),
        ("fast_break_points", "INT64"), ("points_in_paint", "INT64"), ("turnover_points", "INT64"),
        ("largest_lead", "INT64"), ("opponent_team_id", "INT64"), ("opponent_team_abbreviation", "STRING"),
        ("opponent_team_score", "INT64"),
        *_PROVENANCE,
    ),
    cluster_by=("team_id",),
    key=("game_id", "team_id"),
    description="ESPN's team box score, one row per team per game, ESPN ids and names as received "
                "(mapped to NBA.com games by the reconcile phase: nba_ops.provider_games).",
)  # fmt: skip

RAW_TABLES: dict[str, TableSpec] = {
    "schedule": RAW_SCHEDULE,
    "player_box": RAW_PLAYER_BOXSCORES,
    "shots": RAW_SHOTS,
    ESPN_TABLE: RAW_ESPN_TEAM_BOXSCORES,
}

# Percentages are blank when there was no attempt; every other field must be present.
NULLABLE = {"FG_PCT", "FG3_PCT", "FT_PCT", "field_goal_pct", "three_point_field_goal_pct", "free_throw_pct"}
_INTEGER = re.compile(r"^[+-]?\d+$")


class LandingFileError(ValueError):
    """A landing file that cannot be loaded: names the file, the date and each bad field."""

    def __init__(self, file: str, game_date: date, problems: list[tuple[str, str]]):
        self.file, self.game_date, self.problems = file, game_date, problems
        lines = "; ".join(f"field {field}: {msg}" for field, msg in problems)
        super().__init__(f"{file} (game date {game_date}): {lines}")


def landing_path(table: str, game_date: date) -> str:
    return f"{table}/{game_date.isoformat()}.csv"


def _examples(values: pd.Series, rows: pd.Index) -> str:
    shown = ", ".join(f"line {i + 2}: {values[i]!r}" for i in list(rows)[:3])
    more = f" and {len(rows) - 3} more" if len(rows) > 3 else ""
    return f"{shown}{more}"


def parse_landing_file(table: str, game_date: date, data: bytes, file: str) -> pd.DataFrame:
    """Type one landing file (source layout, text) into its raw table's columns.

    Raises LandingFileError listing every bad field: a missing column, a non-numeric value,
    an empty numeric value, a duplicate key, a game date other than the file's date.
    A clean file is typed by Arrow in one pass (`_typed_clean`); anything it does not accept
    outright goes through the checks below, which name each problem (or accept the file).
    """
    clean = _typed_clean(table, game_date, data)
    return clean if clean is not None else _typed_checked(table, game_date, data, file)


def _typed_clean(table: str, game_date: date, data: bytes) -> pd.DataFrame | None:
    """The file typed as `_typed_checked` types it, when every check passes at first sight
    (no value to trim, no empty required value, every integer and date well formed, the
    file's date only, no duplicate key); else None. Stricter than the checks, never looser:
    a None costs only the slower path. (pandas column by column: ~60 ms for a box-score
    file; Arrow: a few.)"""
    types = dict(RAW_TABLES[table].columns)
    try:
        text = pacsv.read_csv(
            pa.BufferReader(data),
            convert_options=pacsv.ConvertOptions(column_types={c: pa.string() for c in SOURCE_COLUMNS[table]},
                                                 strings_can_be_null=False),
        )  # fmt: skip
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError):
        return None
    names = text.column_names
    if len(set(names)) != len(names) or any(c not in names for c in SOURCE_COLUMNS[table]):
        return None
    out: dict[str, object] = {}
    for col in SOURCE_COLUMNS[table]:
        raw, kind = text.column(col), types[col.lower()]
        if len(raw) and not pc.all(pc.equal(pc.utf8_trim_whitespace(raw), raw)).as_py():
            return None
        empty = pc.equal(raw, "")
        if col not in NULLABLE and pc.any(empty).as_py():
            return None
        if kind == "INT64":
            if len(raw) and not pc.all(pc.match_substring_regex(raw, _INTEGER.pattern)).as_py():
                return None
            out[col.lower()] = pd.array(pc.cast(raw, pa.int64()).to_numpy(zero_copy_only=False), dtype="Int64")
        elif kind == "FLOAT64":  # pandas parses the numbers, as the checks do
            given = ~empty.to_numpy(zero_copy_only=False)
            num = pd.to_numeric(pd.Series(raw.to_numpy(zero_copy_only=False)).where(given), errors="coerce")
            if (num.isna() & given).any():
                return None
            out[col.lower()] = num.astype("float64").to_numpy()
        elif kind == "DATE":
            if len(raw) and not pc.all(pc.equal(raw, game_date.isoformat())).as_py():
                return None
            out[col.lower()] = [game_date] * len(raw)
        else:
            out[col.lower()] = pd.array(raw.to_numpy(zero_copy_only=False), dtype="str")
    frame = pd.DataFrame(out, index=pd.RangeIndex(text.num_rows))
    key = list(RAW_TABLES[table].key)
    if key and frame.duplicated(key).any():
        return None
    return frame


def _typed_checked(table: str, game_date: date, data: bytes, file: str) -> pd.DataFrame:
    """Every check of a landing file, each bad field named with examples."""
    spec = RAW_TABLES[table]
    types = dict(spec.columns)
    try:
        text = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise LandingFileError(file, game_date, [("*", f"not a readable CSV ({exc})")]) from exc
    except pd.errors.EmptyDataError:
        raise LandingFileError(file, game_date, [("*", "empty file, not even a header")]) from None

    problems: list[tuple[str, str]] = []
    missing = [c for c in SOURCE_COLUMNS[table] if c not in text.columns]
    problems += [(c, "column missing") for c in missing]
    out: dict[str, pd.Series] = {}  # one frame at the end (inserting column by column copies)
    for col in SOURCE_COLUMNS[table]:
        if col in missing:
            continue
        raw, kind = text[col].str.strip(), types[col.lower()]
        empty = raw == ""
        if empty.any() and col not in NULLABLE:
            problems.append((col, f"empty value ({_examples(raw, raw.index[empty])})"))
        if kind == "INT64":
            bad = ~empty & ~raw.str.match(_INTEGER)
            if bad.any():
                problems.append((col, f"not an integer ({_examples(raw, raw.index[bad])})"))
            out[col.lower()] = pd.to_numeric(raw.where(~empty & ~bad), errors="coerce").astype("Int64")
        elif kind == "FLOAT64":
            num = pd.to_numeric(raw.where(~empty), errors="coerce")
            bad = ~empty & num.isna()
            if bad.any():
                problems.append((col, f"not a number ({_examples(raw, raw.index[bad])})"))
            out[col.lower()] = num.astype("float64")
        elif kind == "DATE":
            parsed = pd.to_datetime(raw.where(~empty), format="%Y-%m-%d", errors="coerce")
            bad = ~empty & parsed.isna()
            if bad.any():
                problems.append((col, f"not a YYYY-MM-DD date ({_examples(raw, raw.index[bad])})"))
            other = ~empty & ~bad & (parsed.dt.date != game_date)
            if other.any():
                problems.append(
                    (col, f"outside the file's date {game_date} ({_examples(raw, raw.index[other])})")
                )
            out[col.lower()] = parsed.dt.date
        else:
            out[col.lower()] = raw
    out = pd.DataFrame(out, index=text.index)
    if spec.key and not any(c.upper() in missing for c in spec.key):
        dup = out.duplicated(list(spec.key), keep="first")
        if dup.any():
            keys = out.loc[dup, list(spec.key)].astype(str).agg("/".join, axis=1)
            problems.append(
                ("/".join(c.upper() for c in spec.key), f"duplicate rows ({_examples(keys, keys.index)})")
            )
    if problems:
        raise LandingFileError(file, game_date, problems)
    return out


def check_references(
    game_date: date, parsed: Mapping[str, pd.DataFrame], files: Mapping[str, str]
) -> None:
    """Box scores and shots must belong to the date's scheduled games and their two teams."""
    schedule = parsed["schedule"]
    playing = pd.concat(
        [
            schedule[["game_id", "home_team_id"]].set_axis(["game_id", "team_id"], axis=1),
            schedule[["game_id", "away_team_id"]].set_axis(["game_id", "team_id"], axis=1),
        ]
    )
    known_pairs = set(zip(playing.game_id, playing.team_id.astype(int), strict=True))
    problems: list[tuple[str, str, str]] = []
    itself = schedule.game_id[schedule.home_team_id == schedule.away_team_id]
    if len(itself) and "schedule" in files:
        problems.append(("schedule", "HOME_TEAM_ID", f"a team plays itself in {list(itself)[:3]}"))
    for table, team_cols in (("player_box", ("TEAM_ID", "OPP_TEAM_ID")), ("shots", ("TEAM_ID",))):
        if table not in parsed:
            continue
        df = parsed[table]
        unknown_game = ~df.game_id.isin(set(schedule.game_id))
        if unknown_game.any():
            ids = sorted(set(df.game_id[unknown_game]))[:3]
            problems.append((table, "GAME_ID", f"not a game of {game_date} in the schedule: {ids}"))
        for col in team_cols:
            pairs = zip(df.game_id, df[col.lower()].astype(int), strict=True)
            unknown = pd.Series([p not in known_pairs for p in pairs], index=df.index) & ~unknown_game
            if unknown.any():
                ids = sorted(set(df[col.lower()][unknown].astype(int)))[:3]
                problems.append((table, col, f"team id not playing in that game: {ids}"))
    if problems:
        raise LandingFileError(
            files[problems[0][0]], game_date, [(f"{t}.{field}", msg) for t, field, msg in problems]
        )


def check_espn_teams(game_date: date, parsed: pd.DataFrame, file: str) -> None:
    """ESPN rows must name teams of the team table (config/provider_teams.yaml) by their own
    id and abbreviation, and say home or away: a team that cannot be mapped is refused here,
    by field, never dropped later."""
    teams = team_lookup("espn_team_id", "espn")
    problems: list[tuple[str, str]] = []
    for id_col, abbr_col in (("team_id", "team_abbreviation"), ("opponent_team_id", "opponent_team_abbreviation")):
        ids = parsed[id_col].astype(int)
        unknown = ~ids.isin(set(teams))
        if unknown.any():
            problems.append((id_col, f"not an ESPN team of config/provider_teams.yaml ({_examples(ids, ids.index[unknown])})"))
        wrong = ~unknown & (parsed[abbr_col] != ids.map(teams))
        if wrong.any():
            got = parsed[abbr_col] + " for id " + ids.astype(str) + ", expected " + ids.map(teams).fillna("?")
            problems.append((abbr_col, f"not its team id's abbreviation ({_examples(got, got.index[wrong])})"))
    side = ~parsed.team_home_away.isin({"home", "away"})
    if side.any():
        problems.append(("team_home_away", f"neither home nor away ({_examples(parsed.team_home_away, parsed.index[side])})"))
    if problems:
        raise LandingFileError(file, game_date, problems)


def raw_frames(
    game_date: date,
    files: Mapping[str, tuple[str, bytes]],
    source: str,
    ingested_at: datetime,
) -> dict[TableSpec, pd.DataFrame]:
    """All three landing files of a date → the rows of its three raw tables, or an error.
    Everything is checked before anything is written, so a bad file writes nothing."""
    parsed, errors = {}, []
    for table in SOURCE_TABLES:
        uri, data = files[table]
        try:
            parsed[table] = parse_landing_file(table, game_date, data, uri)
        except LandingFileError as exc:
            errors.append(exc)
    if errors:
        if len(errors) == 1:
            raise errors[0]
        raise LandingFileError(
            " + ".join(e.file for e in errors),
            game_date,
            [p for e in errors for p in e.problems],
        )
    check_references(game_date, parsed, {t: files[t][0] for t in SOURCE_TABLES})
    return {
        RAW_TABLES[t]: df.assign(ingested_at=ingested_at, source=source)
        for t, df in parsed.items()
    }


# ---------------------------------------------------------------- the phase


def _land(run: ProcessorRun, table: str) -> tuple[pd.DataFrame, str]:
    """Fetch one source table for the date, land it as a CSV file exactly as received (the
    copy stays whatever happens next), and type it (LandingFileError names file and field)."""
    data = run.source.fetch_csv(table, run.game_date)
    uri = run.landing.write_bytes(landing_path(table, run.game_date), data)
    run.detail.update(uri=uri, sha256=hashlib.sha256(data).hexdigest())
    return parse_landing_file(table, run.game_date, data, uri), uri


def _provenance(run: ProcessorRun, df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(ingested_at=datetime.now(timezone.utc), source=run.source.name)


def _scheduled(run: ProcessorRun) -> pd.DataFrame:
    return run.warehouse.query(
        "SELECT game_id, home_team_id, away_team_id FROM nba_raw.schedule WHERE game_date = @game_date",
        {"game_date": run.game_date},
    )


def schedule(run: ProcessorRun) -> pd.DataFrame:
    parsed, uri = _land(run, "schedule")
    check_references(run.game_date, {"schedule": parsed}, {"schedule": uri})
    return _provenance(run, parsed)


def player_boxscores(run: ProcessorRun) -> pd.DataFrame:
    """Box scores must belong to the date's scheduled games and their two teams."""
    parsed, uri = _land(run, "player_box")
    check_references(run.game_date, {"schedule": _scheduled(run), "player_box": parsed}, {"player_box": uri})
    return _provenance(run, parsed)


def shots(run: ProcessorRun) -> pd.DataFrame:
    """Shots must belong to the date's scheduled games and their two teams."""
    parsed, uri = _land(run, "shots")
    check_references(run.game_date, {"schedule": _scheduled(run), "shots": parsed}, {"shots": uri})
    return _provenance(run, parsed)


def espn_team_boxscores(run: ProcessorRun) -> pd.DataFrame:
    """ESPN's team box for the date (no rows when ESPN has no folder for its season: the
    reconcile phase then says ESPN is not available); its teams must be the team table's."""
    parsed, uri = _land(run, ESPN_TABLE)
    check_espn_teams(run.game_date, parsed, uri)
    return _provenance(run, parsed)


def seasons_of(warehouse: Warehouse, dates: list[date]) -> dict[date, str]:
    """The season label of each date, from the loaded schedule (a date not loaded has none)."""
    if not dates or not warehouse.has_table(RAW_SCHEDULE):
        return {}
    found = warehouse.query(
        "SELECT game_date, max(season) AS season FROM nba_raw.schedule "
        "WHERE game_date BETWEEN @start AND @end GROUP BY game_date",
        {"start": min(dates), "end": max(dates)},
    )
    return {pd.Timestamp(d).date(): str(s) for d, s in zip(found.game_date, found.season, strict=True)}


RAW = Phase(
    name="raw",
    processors=(
        Processor("schedule", RAW_SCHEDULE, schedule, source_table="schedule", retry_transient=True),
        Processor("player_boxscores", RAW_PLAYER_BOXSCORES, player_boxscores, reads=(Read("schedule"),),
                  after=("schedule",), source_table="player_box", retry_transient=True),
        Processor("shots", RAW_SHOTS, shots, reads=(Read("schedule"),), after=("schedule",),
                  source_table="shots", retry_transient=True),
        Processor("espn_team_boxscores", RAW_ESPN_TEAM_BOXSCORES, espn_team_boxscores,
                  source_table=ESPN_TABLE, provider="espn", retry_transient=True),
    ),
)  # fmt: skip
