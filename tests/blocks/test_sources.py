"""BundledSeasonSource: season folders on disk, compared with pandas over the same CSVs."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from blocks.sources import SOURCE_COLUMNS, BundledSeasonSource
from blocks.settings import BUNDLED_SOURCE_DIR

SOURCE = BundledSeasonSource(source_dir=str(BUNDLED_SOURCE_DIR))


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
