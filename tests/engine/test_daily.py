"""The nightly run's default date: yesterday in New York, wherever the machine runs."""

from __future__ import annotations

from datetime import date, datetime, timezone

from engine.daily import default_game_date


def test_yesterday_is_new_york_yesterday():
    # 03:00 UTC on Jan 16 is still Jan 15 in New York: the night's games are Jan 14's.
    assert default_game_date(datetime(2024, 1, 16, 3, 0, tzinfo=timezone.utc)) == date(2024, 1, 14)
    # 15:00 UTC (10:00 EST, the cron time) on Jan 16: Jan 15's games.
    assert default_game_date(datetime(2024, 1, 16, 15, 0, tzinfo=timezone.utc)) == date(2024, 1, 15)
    # Daylight saving: 10:00 EDT is 14:00 UTC.
    assert default_game_date(datetime(2024, 4, 1, 14, 0, tzinfo=timezone.utc)) == date(2024, 3, 31)
