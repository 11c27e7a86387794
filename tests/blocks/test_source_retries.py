"""The source retry policy (blocks.sources): transient errors retried 4 times, anything else
at once, the last error raised as it was, never retried twice over."""

from __future__ import annotations

from datetime import date
from typing import ClassVar

import pandas as pd
import pytest
from prefect import flow, task

import blocks.sources as sources
from blocks.sources import RETRY_DELAYS, Source, TransientSourceError
from engine.policies import TRANSIENT_RETRIES


class Flaky(Source):
    """Fails its first `failures` calls of game_dates with `error`."""

    name: ClassVar[str] = "flaky"
    failures: int = 0
    error: str = "transient"
    calls: list[str] = []

    def game_dates(self, start: date, end: date) -> list[date]:
        self.calls.append("game_dates")
        if len(self.calls) <= self.failures:
            if self.error == "transient":
                raise TransientSourceError(f"HTTP 503 on call {len(self.calls)}")
            raise ValueError(f"bad payload on call {len(self.calls)}")
        return [start]

    def season_start(self, game_date: date) -> date:  # calls another source call inside
        return self.game_dates(game_date, game_date)[0]

    def fetch(self, table: str, game_date: date) -> pd.DataFrame:
        return pd.DataFrame()

    def fingerprint(self, table: str, game_date: date) -> str:
        return ""


@pytest.fixture
def pauses(monkeypatch):
    waited: list[int] = []
    monkeypatch.setattr(sources, "retry_delay", lambda retry: waited.append(retry) or 0.0)
    return waited


D = date(2024, 1, 15)


def test_a_transient_error_is_retried_until_the_call_passes(pauses):
    src = Flaky(failures=3, calls=[])
    assert src.game_dates(D, D) == [D]
    assert len(src.calls) == 4 and pauses == [1, 2, 3]


def test_after_four_retries_the_last_error_is_raised_as_it_was(pauses):
    src = Flaky(failures=99, calls=[])
    with pytest.raises(TransientSourceError, match="HTTP 503 on call 5"):
        src.game_dates(D, D)
    assert len(src.calls) == len(RETRY_DELAYS) + 1 == 5


def test_bad_data_is_not_retried(pauses):
    src = Flaky(failures=1, error="bad", calls=[])
    with pytest.raises(ValueError, match="bad payload on call 1"):
        src.game_dates(D, D)
    assert len(src.calls) == 1 and pauses == []


def test_a_call_inside_a_retried_call_is_not_retried_again(pauses):
    src = Flaky(failures=99, calls=[])
    with pytest.raises(TransientSourceError):
        src.season_start(D)  # season_start retries; its game_dates inside does not
    assert len(src.calls) == 5


def test_the_delays_are_the_task_policy_and_jittered_like_prefect():
    assert TRANSIENT_RETRIES["retries"] == len(RETRY_DELAYS)
    assert TRANSIENT_RETRIES["retry_delay_seconds"] == [2, 4, 8, 16]
    drawn = [sources.retry_delay(1) for _ in range(2000)]
    assert 2 * 0.6 < min(drawn) < 2 and 2 < max(drawn) <= 2 * 1.5
    assert sum(drawn) / len(drawn) == pytest.approx(2, rel=0.1)


def test_inside_a_task_that_retries_the_task_retries(prefect_api, pauses):
    src = Flaky(failures=1, calls=[])
    no_wait = {**TRANSIENT_RETRIES, "retry_delay_seconds": 0}

    @task(**no_wait)
    def extract() -> list[date]:
        return src.game_dates(D, D)

    @flow
    def run() -> list[date]:
        return extract()

    assert run() == [D]
    assert len(src.calls) == 2 and pauses == []  # one retry, Prefect's, not the source's
