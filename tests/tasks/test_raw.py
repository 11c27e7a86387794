"""The landing-file rules of the raw phase, on real rows of the bundled season (no Prefect)."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pandas as pd
import pytest

from blocks.sources import SOURCE_TABLES, BundledSeasonSource, to_csv_bytes
from blocks.settings import BUNDLED_SOURCE_DIR
from tasks.raw import (
    RAW_PLAYER_BOXSCORES,
    RAW_SCHEDULE,
    RAW_SHOTS,
    LandingFileError,
    _typed_checked,
    _typed_clean,
    parse_landing_file,
    raw_frames,
)

DAY = date(2023, 10, 24)  # opening night: DEN–LAL and GSW–PHX
INGESTED = datetime(2024, 1, 1, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def day_rows() -> dict[str, pd.DataFrame]:
    source = BundledSeasonSource(source_dir=str(BUNDLED_SOURCE_DIR))
    return {t: source.fetch(t, DAY) for t in SOURCE_TABLES}


def _files(rows: dict[str, pd.DataFrame]) -> dict[str, tuple[str, bytes]]:
    return {t: (f"landing/{t}/{DAY}.csv", to_csv_bytes(df)) for t, df in rows.items()}


def _error(rows, table: str) -> LandingFileError:
    with pytest.raises(LandingFileError) as info:
        raw_frames(DAY, _files(rows), "bundled", INGESTED)
    assert f"landing/{table}/{DAY}.csv" in info.value.file
    assert info.value.game_date == DAY
    assert str(DAY) in str(info.value)
    return info.value


def _changed(rows, table: str, change) -> dict[str, pd.DataFrame]:
    out = {t: df.copy() for t, df in rows.items()}
    out[table] = change(out[table])
    return out


def test_clean_date_types_every_column(day_rows, season_csv):
    frames = raw_frames(DAY, _files(day_rows), "bundled", INGESTED)
    box = frames[RAW_PLAYER_BOXSCORES]
    expected = season_csv["player_box"].query("GAME_DATE == '2023-10-24'")
    assert len(box) == len(expected) == 44
    assert box.pts.sum() == expected.PTS.sum()
    assert box.game_id.str.len().eq(10).all()
    assert box.game_date.eq(DAY).all()
    # Percentages are NULL exactly where the CSV leaves them blank (no attempt).
    assert box.fg3_pct.isna().sum() == expected.FG3_PCT.isna().sum() > 0
    assert (box.source == "bundled").all() and (box.ingested_at == INGESTED).all()
    schedule = frames[RAW_SCHEDULE]
    assert sorted(schedule.home_pts + schedule.away_pts) == sorted(
        season_csv["schedule"].query("GAME_DATE == '2023-10-24'").eval("HOME_PTS + AWAY_PTS")
    )
    shots = frames[RAW_SHOTS]
    assert len(shots) == (season_csv["shots"].GAME_DATE == "2023-10-24").sum()
    assert shots.loc_x.dtype == "float64"
    for spec, df in frames.items():  # what reaches the warehouse matches its table spec
        spec.conform(df)


def test_missing_column_names_the_column(day_rows):
    err = _error(_changed(day_rows, "player_box", lambda df: df.drop(columns=["FGA"])), "player_box")
    assert ("FGA", "column missing") in err.problems


def test_non_numeric_value_names_field_and_line(day_rows):
    def corrupt(df):
        df.loc[3, "PTS"] = "twenty"
        return df

    err = _error(_changed(day_rows, "player_box", corrupt), "player_box")
    field, message = err.problems[0]
    assert field == "PTS" and "not an integer" in message and "line 5: 'twenty'" in message


def test_empty_string_in_numeric_field(day_rows):
    def corrupt(df):
        df.loc[0, "LOC_X"] = ""
        return df

    err = _error(_changed(day_rows, "shots", corrupt), "shots")
    assert err.problems == [("LOC_X", "empty value (line 2: '')")]


def test_blank_percentage_is_allowed_but_blank_count_is_not(day_rows):
    def blank_fga(df):
        df.loc[1, "FGA"] = ""
        return df

    err = _error(_changed(day_rows, "player_box", blank_fga), "player_box")
    assert [f for f, _ in err.problems] == ["FGA"]


def test_duplicate_rows(day_rows):
    err = _error(
        _changed(day_rows, "player_box", lambda df: pd.concat([df, df.iloc[[7]]], ignore_index=True)),
        "player_box",
    )
    field, message = err.problems[0]
    assert field == "GAME_ID/PLAYER_ID" and "duplicate rows" in message


def test_identical_shot_rows_are_real_data_not_duplicates(season_csv):
    # Two tip-ins by one player in the same second: the real shot chart has such pairs.
    shots = season_csv["shots"]
    dups = shots[shots.duplicated(keep=False)]
    day = date.fromisoformat(dups.GAME_DATE.iloc[0])
    source = BundledSeasonSource(source_dir=str(BUNDLED_SOURCE_DIR))
    parsed = parse_landing_file("shots", day, to_csv_bytes(source.fetch("shots", day)), "f.csv")
    assert len(parsed) == (shots.GAME_DATE == str(day)).sum()


def test_game_date_outside_the_files_date(day_rows):
    def move(df):
        df.loc[1, "GAME_DATE"] = "2023-10-25"
        return df

    err = _error(_changed(day_rows, "schedule", move), "schedule")
    assert err.problems[0][0] == "GAME_DATE" and "outside the file's date 2023-10-24" in err.problems[0][1]


def test_unknown_team_id(day_rows):
    def foreign(df):
        df.loc[df.index[:2], "TEAM_ID"] = "1610612738"  # Boston, not playing that night
        return df

    err = _error(_changed(day_rows, "shots", foreign), "shots")
    assert err.problems == [("shots.TEAM_ID", "team id not playing in that game: [1610612738]")]


def test_box_score_of_a_game_not_in_the_schedule(day_rows):
    def other_game(df):
        df.loc[0, "GAME_ID"] = "0022300999"
        return df

    err = _error(_changed(day_rows, "player_box", other_game), "player_box")
    assert err.problems[0][0] == "player_box.GAME_ID" and "0022300999" in err.problems[0][1]


def test_every_bad_file_of_a_date_is_reported_at_once(day_rows):
    rows = _changed(day_rows, "player_box", lambda df: df.drop(columns=["PTS"]))
    rows = _changed(rows, "shots", lambda df: df.drop(columns=["LOC_Y"]))
    with pytest.raises(LandingFileError) as info:
        raw_frames(DAY, _files(rows), "bundled", INGESTED)
    assert {f for f, _ in info.value.problems} == {"PTS", "LOC_Y"}
    assert "player_box" in info.value.file and "shots" in info.value.file


def test_not_a_csv():
    with pytest.raises(LandingFileError, match="empty file"):
        parse_landing_file("schedule", DAY, b"", "x.csv")


def test_the_processors_check_box_scores_and_shots_against_the_loaded_schedule(
    hoopflow_home, tmp_path, monkeypatch, season_csv
):
    """The raw phase's processors, called directly (no Prefect): box scores and shots are
    checked against the date's schedule as loaded in the warehouse; a bad file fails its own
    processor on its own date, and everything else is written."""
    from blocks.settings import get_settings
    from engine.ledger import RUN_LEDGER
    from engine.phase_run import run_phase_directly
    from tasks.phases import PHASES
    from tasks.raw import RAW
    from tests.conftest import copy_season, use_source

    days = ["2023-10-24", "2023-10-25"]
    folder = copy_season(tmp_path, days)
    shots = pd.read_csv(folder / "shots.csv.gz", dtype=str, keep_default_na=False)
    shots.loc[shots.index[shots.GAME_DATE == "2023-10-24"][:2], "TEAM_ID"] = "1610612738"  # Boston: not playing
    shots.to_csv(folder / "shots.csv.gz", index=False)
    box = pd.read_csv(folder / "player_box.csv.gz", dtype=str, keep_default_na=False)
    box.loc[box.index[box.GAME_DATE == "2023-10-25"][0], "GAME_ID"] = "0022300999"
    box.to_csv(folder / "player_box.csv.gz", index=False)
    use_source(monkeypatch, folder)
    wh = get_settings().warehouse_block()
    wh.ensure_tables([RUN_LEDGER, *RAW.tables])

    result = run_phase_directly(RAW, PHASES, [date.fromisoformat(d) for d in days])

    first, second = (date.fromisoformat(d) for d in days)
    assert set(result.failed) == {first, second}
    assert result.failed[first].startswith("shots: LandingFileError: ")
    assert "shots/2023-10-24.csv (game date 2023-10-24)" in result.failed[first]
    assert "field shots.TEAM_ID: team id not playing in that game: [1610612738]" in result.failed[first]
    assert result.failed[second].startswith("player_boxscores: LandingFileError: ")
    assert "player_box/2023-10-25.csv" in result.failed[second]
    assert "field player_box.GAME_ID: not a game of 2023-10-25 in the schedule: ['0022300999']" in result.failed[second]

    def counts(table: str) -> dict[str, int]:
        got = wh.query(f"SELECT CAST(game_date AS VARCHAR) AS d, count(*) AS n FROM nba_raw.{table} GROUP BY 1")
        return dict(zip(got.d, got.n.astype(int), strict=True))

    def csv_counts(name: str, only: list[str]) -> dict[str, int]:
        csv = season_csv[name]
        return {d: int((csv.GAME_DATE == d).sum()) for d in only}

    assert counts("schedule") == csv_counts("schedule", days)
    # Nothing of a bad file's date in its table; the shots date's box scores are loaded.
    assert counts("player_boxscores") == csv_counts("player_box", ["2023-10-24"])
    assert "2023-10-24" not in counts("shots")
    ledger = wh.query("SELECT processor, CAST(game_date AS VARCHAR) AS d FROM nba_ops.run_ledger WHERE status = 'failed'")
    assert sorted(zip(ledger.processor, ledger.d, strict=True)) == [
        ("player_boxscores", "2023-10-25"), ("shots", "2023-10-24")
    ]  # fmt: skip


def test_clean_files_are_typed_by_arrow_exactly_as_the_checks_type_them(season_csv):
    """A clean file takes the one-pass Arrow typing; its frame equals the column-by-column
    checks' frame (values and dtypes) on every file of the season's first month."""
    source = BundledSeasonSource(source_dir=str(BUNDLED_SOURCE_DIR))
    for d in source.game_dates(date(2023, 10, 24), date(2023, 11, 24)):
        for table in SOURCE_TABLES:
            data = source.fetch_csv(table, d)
            fast = _typed_clean(table, d, data)
            assert fast is not None, (table, d)
            pd.testing.assert_frame_equal(fast, _typed_checked(table, d, data, "f"))


def test_a_value_the_fast_path_does_not_take_goes_through_the_checks(day_rows):
    # Padded and signed integers are valid (the checks trim and accept a sign); the Arrow
    # pass leaves them to the checks, which type them the same as the clean values.
    padded = _changed(day_rows, "player_box", lambda df: df.assign(
        PTS=[f" {v} " for v in df.PTS], PLUS_MINUS=[f"+{v}" if int(v) > 0 else str(v) for v in df.PLUS_MINUS]))  # fmt: skip
    data = to_csv_bytes(padded["player_box"])
    assert _typed_clean("player_box", DAY, data) is None
    clean = parse_landing_file("player_box", DAY, to_csv_bytes(day_rows["player_box"]), "f")
    pd.testing.assert_frame_equal(parse_landing_file("player_box", DAY, data, "f"), clean)
