"""NbaStatsApiSource against a real local HTTP server answering with recorded NBA.com
responses (tests/fixtures/nba_api, rebuilt from the bundled rows of two real dates by
record.py). Expected rows are read straight from the bundled CSVs with pandas."""

from __future__ import annotations

import json
from datetime import date

import pandas as pd
import pytest
from nba_api.stats.library.http import NBAStatsHTTP
from urllib3.util.request import ACCEPT_ENCODING

import blocks.sources as sources
from blocks.nba_stats_api import NbaStatsApiSource, season_of
from blocks.sources import SOURCE_COLUMNS, MalformedPayloadError, TransientSourceError
from tests.conftest import SEASON_DIR
from tests.nba_api_server import FIXTURES, NBA_ERROR_BODY, serve_recorded_nba_stats

pytestmark = pytest.mark.usefixtures("prefect_api")  # rate_limit() talks to a Prefect API

OPENER, OVERTIME = date(2023, 10, 24), date(2024, 3, 28)  # the two recorded dates
TIMEOUT = 1.5


@pytest.fixture(autouse=True)
def one_attempt(monkeypatch):
    """These tests classify what one request's failure is; the retry policy around every
    source call is tested in test_source_retries.py (and end to end below)."""
    monkeypatch.setattr(sources._retrying_here, "active", True, raising=False)


@pytest.fixture
def server():
    with serve_recorded_nba_stats() as state:
        yield state


@pytest.fixture
def source(server) -> NbaStatsApiSource:
    return NbaStatsApiSource(
        base_url=server.url,
        timeout_seconds=TIMEOUT,
        rate_limit_name="nba-stats-api-test",
        season_type="Regular Season",
    )


@pytest.fixture(scope="module")
def bundled_text() -> dict[str, pd.DataFrame]:
    """The bundled season as text, exactly as the files hold it."""
    return {
        t: pd.read_csv(SEASON_DIR / f"{t}.csv.gz", dtype=str, keep_default_na=False)
        for t in ("schedule", "player_box", "shots")
    }


def _rows(df: pd.DataFrame) -> list[tuple[str, ...]]:
    return sorted(tuple(str(v) for v in row) for row in df.itertuples(index=False))


@pytest.mark.parametrize("day", [OPENER, OVERTIME], ids=str)
@pytest.mark.parametrize("table", ["schedule", "player_box", "shots"])
def test_fetch_returns_the_bundled_rows_of_the_date(source, bundled_text, table, day):
    got = source.fetch(table, day)
    expected = bundled_text[table][bundled_text[table].GAME_DATE == day.isoformat()]
    assert list(got.columns) == list(SOURCE_COLUMNS[table])
    assert len(expected) > 0
    assert _rows(got) == _rows(expected)


def test_schedule_of_an_overtime_date(source):
    got = source.fetch("schedule", OVERTIME).set_index("GAME_ID")
    # ATL 123-122 BOS went to overtime (team MIN 265 = 240 + 25); NOP-MIL did not.
    columns = ["HOME_TEAM_ABBREVIATION", "HOME_PTS", "AWAY_PTS", "WINNER", "NUM_OT"]
    assert got.loc["0022301060", columns].tolist() == ["ATL", "123", "122", "H", "1"]
    assert got.loc["0022301061", "NUM_OT"] == "0"


def test_shot_coordinates_are_feet_with_the_readme_orientation(source):
    shots = source.fetch("shots", OPENER)
    x, y = shots.LOC_X.astype(float), shots.LOC_Y.astype(float)
    # Left side positive, right side negative, hoop at (0, 5.25) ft.
    assert (x[shots.ZONE_NAME == "Left Side"] > 0).all()
    assert (x[shots.ZONE_NAME == "Right Side"] < 0).all()
    assert (x[shots.BASIC_ZONE == "Left Corner 3"] >= 20).all()
    distance = ((x**2 + (y - 5.25) ** 2) ** 0.5).round()
    assert (abs(distance - shots.SHOT_DISTANCE.astype(float)) <= 1).all()


def test_game_dates_is_one_team_log_call_over_the_range(source, server):
    assert source.game_dates(date(2023, 10, 1), date(2024, 6, 30)) == [OPENER, OVERTIME]
    assert len(server.requests) == 1
    params = server.requests[0].params
    assert server.requests[0].path == "leaguegamelog"
    assert [params[k] for k in ("PlayerOrTeam", "DateFrom", "DateTo")] == [
        "T", "10/01/2023", "06/30/2024",
    ]  # fmt: skip
    assert (params["Season"], params["SeasonType"]) == ("2023-24", "Regular Season")

    assert source.game_dates(date(2024, 3, 1), date(2024, 3, 31)) == [OVERTIME]
    assert source.game_dates(date(2023, 10, 25), date(2023, 10, 31)) == []


def test_season_start_is_the_seasons_first_game_date(source, server):
    # The recorded season holds opening night and one March date: the start is opening night,
    # asked as one team-log call from August of the season's first year.
    assert source.season_start(OVERTIME) == OPENER
    params = server.requests[-1].params
    assert (params["DateFrom"], params["DateTo"], params["Season"]) == ("08/01/2023", "03/28/2024", "2023-24")


def test_game_dates_across_seasons_asks_each_season(source, server):
    assert source.game_dates(date(2023, 6, 1), date(2024, 9, 30)) == [OPENER, OVERTIME]
    assert [r.params["Season"] for r in server.requests] == ["2022-23", "2023-24", "2024-25"]


def test_requests_carry_date_season_and_season_type(source, server):
    source.fetch("player_box", OPENER)
    source.fetch("schedule", OPENER)
    source.fetch("shots", OPENER)
    player, team = server.requests_to("leaguegamelog")
    (shots,) = server.requests_to("shotchartdetail")
    common = {"Season": "2023-24", "SeasonType": "Regular Season", "LeagueID": "00",
              "DateFrom": "10/24/2023", "DateTo": "10/24/2023"}  # fmt: skip
    for request, extra in (
        (player, {"PlayerOrTeam": "P"}),
        (team, {"PlayerOrTeam": "T"}),
        (shots, {"TeamID": "0", "PlayerID": "0", "ContextMeasure": "FGA"}),
    ):
        assert {k: request.params.get(k) for k in {**common, **extra}} == {**common, **extra}


def test_requests_look_like_nba_apis_and_name_their_own_host(source, server):
    source.fetch("schedule", OPENER)
    (request,) = server.requests
    assert request.headers["user-agent"].startswith("Mozilla/5.0")  # nba_api's browser headers
    assert request.headers["referer"] == "https://www.nba.com/"
    assert request.headers["host"] == server.url.split("/")[2]  # not nba_api's stats.nba.com
    # Only encodings this environment decodes (nba_api asks for "br" even without brotli).
    assert request.headers["accept-encoding"] == ACCEPT_ENCODING


def test_a_date_without_games_is_an_empty_table(source):
    for table in ("schedule", "player_box", "shots"):
        got = source.fetch(table, date(2023, 10, 25))
        assert got.empty and list(got.columns) == list(SOURCE_COLUMNS[table])


def test_season_is_derived_from_the_date():
    assert season_of(date(2023, 10, 24)) == "2023-24"
    assert season_of(date(2024, 4, 14)) == "2023-24"
    assert season_of(date(2024, 8, 1)) == "2024-25"
    assert season_of(date(1999, 12, 1)) == "1999-00"


def test_fingerprint_does_not_call_the_api(source, server):
    assert source.fingerprint("shots", OPENER) == "nba_api:shots:2023-10-24:Regular Season"
    assert source.fingerprint("shots", OPENER) != source.fingerprint("shots", OVERTIME)
    assert server.requests == []


def test_base_url_does_not_leak_into_nba_api(server):
    before = (NBAStatsHTTP.base_url, NBAStatsHTTP._session)
    a = NbaStatsApiSource(base_url=server.url, timeout_seconds=TIMEOUT)
    b = NbaStatsApiSource(base_url="http://127.0.0.1:9/nowhere", timeout_seconds=TIMEOUT)
    assert len(a.fetch("schedule", OPENER)) == 2
    assert (NBAStatsHTTP.base_url, NBAStatsHTTP._session) == before
    with pytest.raises(TransientSourceError):
        b.fetch("schedule", OPENER)  # its own base URL (nothing listens on port 9)
    assert NbaStatsApiSource().base_url is None  # None → nba_api's https://stats.nba.com/stats


def test_every_call_takes_a_slot_of_the_rate_limit(server):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

    name = "nba-stats-api-slots-test"
    with get_client(sync_client=True) as client:
        client.create_global_concurrency_limit(
            GlobalConcurrencyLimitCreate(name=name, limit=100, slot_decay_per_second=0.001)
        )
        try:
            src = NbaStatsApiSource(
                base_url=server.url, timeout_seconds=TIMEOUT, rate_limit_name=name
            )
            src.fetch("schedule", OPENER)
            src.fetch("shots", OPENER)
            assert client.read_global_concurrency_limit_by_name(name).active_slots == 2
        finally:
            client.delete_global_concurrency_limit_by_name(name)


# ---------------------------------------------------------------------------- failures


@pytest.mark.parametrize(
    ("status", "body"),
    [(429, None), (500, None), (503, "<html>Service Unavailable</html>"), (502, "")],
)
def test_throttling_and_server_errors_are_transient(source, server, status, body):
    server.fail(status, body, times=1)
    with pytest.raises(TransientSourceError, match=f"HTTP {status}") as err:
        source.fetch("shots", OPENER)
    assert "shotchartdetail" in str(err.value) and "2023-10-24" in str(err.value)
    assert len(source.fetch("shots", OPENER)) == 377  # the next call succeeds


def test_a_throttled_call_is_retried_by_the_source_policy_and_passes(source, server, monkeypatch):
    monkeypatch.setattr(sources._retrying_here, "active", False)  # the policy on, as in production
    monkeypatch.setattr(sources, "retry_delay", lambda retry: 0.0)  # no pauses in the test
    server.fail(429, None, times=2)
    assert len(source.fetch("shots", OPENER)) == 377
    assert len(server.requests) == 3  # two throttled, the third answered


def test_nba_error_message_body_with_500_is_transient(source, server):
    server.fail(500, NBA_ERROR_BODY)
    with pytest.raises(TransientSourceError, match="HTTP 500"):
        source.fetch("player_box", OPENER)


def test_a_server_that_hangs_past_the_timeout_is_transient(source, server):
    server.hang(TIMEOUT + 3)
    with pytest.raises(TransientSourceError, match="no answer within"):
        source.fetch("schedule", OPENER)


def test_a_refused_connection_is_transient(server):
    src = NbaStatsApiSource(base_url="http://127.0.0.1:9/stats", timeout_seconds=TIMEOUT)
    with pytest.raises(TransientSourceError, match="connection failed"):
        src.fetch("player_box", OPENER)


def _recorded(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def _without_header(payload: dict, header: str) -> str:
    s = payload["resultSets"][0]
    i = s["headers"].index(header)
    s["headers"].pop(i)
    for row in s["rowSet"]:
        row.pop(i)
    return json.dumps(payload)


def _short_row(payload: dict) -> str:
    payload["resultSets"][0]["rowSet"][3].pop()
    return json.dumps(payload)


def _renamed_set(payload: dict) -> str:
    payload["resultSets"][0]["name"] = "Something_Else"
    return json.dumps(payload)


MALFORMED = {
    "not JSON": (200, "<html><body>Access Denied</body></html>", "not JSON"),
    "truncated JSON": (200, '{"resource":"leaguegamelog","resultSets":[{"name"', "not JSON"),
    "no resultSets": (200, '{"resource":"shotchartdetail","parameters":{}}', "no 'resultSets'"),
    "JSON list": (200, "[]", "no 'resultSets'"),
    "HTTP 400": (400, "SeasonType is required.", "HTTP 400"),
    "HTTP 404": (404, "Not Found", "HTTP 404"),
}


@pytest.mark.parametrize("case", MALFORMED, ids=str)
@pytest.mark.parametrize("table", ["player_box", "schedule", "shots"])
def test_a_body_that_is_not_the_contract_is_malformed(source, server, case, table):
    status, body, message = MALFORMED[case]
    server.fail(status, body, times=None)
    with pytest.raises(MalformedPayloadError, match=message) as err:
        source.fetch(table, OVERTIME)
    endpoint = "shotchartdetail" if table == "shots" else "leaguegamelog"
    assert endpoint in str(err.value) and "2024-03-28" in str(err.value)
    assert len(server.requests) == 1


SHOTS, PLAYERS, TEAMS = (
    "shotchartdetail_2024-03-28.json",
    "leaguegamelog_P_2024-03-28.json",
    "leaguegamelog_T_2024-03-28.json",
)


@pytest.mark.parametrize(
    ("table", "file", "corrupt", "message"),
    [
        ("shots", SHOTS, lambda p: _without_header(p, "LOC_X"),
         r"lacks expected header\(s\) \['LOC_X'\]"),
        ("player_box", PLAYERS, lambda p: _without_header(p, "MATCHUP"), r"\['MATCHUP'\]"),
        ("schedule", TEAMS, lambda p: _without_header(p, "MIN"), r"\['MIN'\]"),
        ("shots", SHOTS, _short_row, "row 3 has 23 values for 24 headers"),
        ("player_box", PLAYERS, _renamed_set, "no result set 'LeagueGameLog'"),
    ],
    ids=["missing LOC_X", "missing MATCHUP", "missing MIN", "short row", "renamed set"],
)  # fmt: skip
def test_missing_headers_and_bad_rows_are_malformed(source, server, table, file, corrupt, message):
    server.fail(200, corrupt(_recorded(file)), times=None)
    with pytest.raises(MalformedPayloadError, match=message) as err:
        source.fetch(table, OVERTIME)
    assert "2024-03-28" in str(err.value)


def test_rows_of_another_date_are_malformed(source, server):
    server.fail(200, json.dumps(_recorded("leaguegamelog_P_2023-10-24.json")))
    with pytest.raises(MalformedPayloadError, match="'2023-10-24' is not the requested date"):
        source.fetch("player_box", OVERTIME)


def test_an_unknown_shot_type_is_malformed(source, server):
    payload = _recorded("shotchartdetail_2024-03-28.json")
    payload["resultSets"][0]["rowSet"][0][12] = "Free Throw"
    server.fail(200, json.dumps(payload))
    with pytest.raises(MalformedPayloadError, match="row 0: SHOT_TYPE 'Free Throw'"):
        source.fetch("shots", OVERTIME)

