"""The production source: NBA.com's stats API (stats.nba.com) read through `nba_api`.

One game date of one source table per call, in the *source layout* of `blocks.sources`
(the column names, order and text conventions of the bundled season files, see
data/nba/*/README.md):

| table        | endpoint (nba_api class)            | parameters                           |
|--------------|-------------------------------------|--------------------------------------|
| `player_box` | `leaguegamelog` (`LeagueGameLog`)   | PlayerOrTeam=P, DateFrom=DateTo=date |
| `schedule`   | `leaguegamelog` (`LeagueGameLog`)   | PlayerOrTeam=T, DateFrom=DateTo=date |
| `shots`      | `shotchartdetail` (`ShotChartDetail`) | TeamID=0, PlayerID=0, ContextMeasure=FGA, DateFrom=DateTo=date |

Every call names the season ("2023-24", derived from the date) and the season type.
nba_api builds the parameters (its endpoint classes, `get_request=False`); the request
goes through a subclass of nba_api's `NBAStatsHTTP` that only changes where it sends
requests (`base_url`) and keeps its own connection pool, so no nba_api global is touched.

nba_api itself never checks the HTTP status (`NBAHTTP.send_api_request` returns the body of
any answer and only parses it later), so the status is checked here, before parsing:
timeouts, connection errors, 429 and 5xx are `TransientSourceError`, retried by the one
source retry policy (blocks.sources: the extract task's Prefect retries, or the source call's
own for planning); any other status, and any body that is not the promised `resultSets`
JSON, is `MalformedPayloadError` naming the endpoint, the date and what is wrong (never
retried). No retry loop lives here.

Every HTTP call first takes one slot of the Prefect rate limit `rate_limit_name` (a global
concurrency limit with slot decay, shared by every process that calls the API).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any, ClassVar

import pandas as pd
import requests
from nba_api.stats.endpoints import LeagueGameLog, ShotChartDetail
from nba_api.stats.library.http import STATS_HEADERS, NBAStatsHTTP, NBAStatsResponse
from prefect.concurrency.sync import rate_limit
from pydantic import Field
from urllib3.util.request import ACCEPT_ENCODING

from blocks.sources import (
    SOURCE_COLUMNS,
    SOURCE_TABLES,
    MalformedPayloadError,
    Source,
    TransientSourceError,
)

LEAGUE_GAME_LOG = "leaguegamelog"
SHOT_CHART_DETAIL = "shotchartdetail"

# Headers each parser reads (a subset of what NBA.com sends; extra headers are ignored).
PLAYER_LOG_HEADERS = (
    "SEASON_ID", "PLAYER_ID", "PLAYER_NAME", "TEAM_ID", "TEAM_ABBREVIATION", "TEAM_NAME",
    "GAME_ID", "GAME_DATE", "MATCHUP", "WL", "MIN", "FGM", "FGA", "FG_PCT", "FG3M", "FG3A",
    "FG3_PCT", "FTM", "FTA", "FT_PCT", "OREB", "DREB", "REB", "AST", "STL", "BLK", "TOV", "PF",
    "PTS", "PLUS_MINUS",
)
TEAM_LOG_HEADERS = (
    "TEAM_ID", "TEAM_ABBREVIATION", "TEAM_NAME", "GAME_ID", "GAME_DATE", "MATCHUP", "WL",
    "MIN", "PTS",
)
SHOT_HEADERS = (
    "GAME_ID", "GAME_DATE", "TEAM_ID", "PLAYER_ID", "PERIOD", "MINUTES_REMAINING",
    "SECONDS_REMAINING", "SHOT_MADE_FLAG", "SHOT_TYPE", "ACTION_TYPE", "SHOT_ZONE_BASIC",
    "SHOT_ZONE_AREA", "SHOT_ZONE_RANGE", "LOC_X", "LOC_Y", "SHOT_DISTANCE",
)  # fmt: skip

# Player-box columns copied as received (same names in LeagueGameLog, mode P).
_PLAYER_STATS = SOURCE_COLUMNS["player_box"][SOURCE_COLUMNS["player_box"].index("WL") :]
_SHOT_TYPES = {"2PT Field Goal": "2PT", "3PT Field Goal": "3PT"}
# "Left Side(L)" → "Left Side": the bundled ZONE_NAME is SHOT_ZONE_AREA without its abbreviation.
_AREA_ABBREVIATION = re.compile(r"\s*\([A-Z]+\)\s*$")
_INTEGER = re.compile(r"^[+-]?\d+$")


def season_of(game_date: date) -> str:
    """The NBA season a date belongs to: "2023-24" for 2023-10-24 and for 2024-04-14
    (seasons start in autumn; the starting year is the date's year from August on).

    Known exception: the 2019-20 "bubble" restart played regular-season games until
    2020-08-14; those August dates map to "2020-21" here and would need an explicit season."""
    start = game_date.year if game_date.month >= 8 else game_date.year - 1
    return f"{start}-{(start + 1) % 100:02d}"


def _seasons_between(start: date, end: date) -> list[str]:
    first = int(season_of(start)[:4])
    last = int(season_of(end)[:4])
    return [f"{y}-{(y + 1) % 100:02d}" for y in range(first, last + 1)]


def _api_date(d: date) -> str:
    # nba_api's documented DateFrom/DateTo form (MM/DD/YYYY), as NBA.com's own pages send it.
    return d.strftime("%m/%d/%Y")


class _StatsResponse(NBAStatsResponse):
    @property
    def status_code(self) -> int | None:
        return self._status_code


class _StatsHTTP(NBAStatsHTTP):
    """nba_api's stats HTTP client with its own connection pool and a per-instance base URL.

    `NBAHTTP.get_session` keeps the session on the class it is called on (`cls._session`),
    so this subclass's `_session` leaves nba_api's global session untouched; `base_url` is set
    on the instance (one per request), never on a class, so it cannot leak between sources.
    nba_api's own endpoint classes call `NBAStatsHTTP().send_api_request(...)`, whose base URL
    is the class attribute: overriding it there would redirect every nba_api user in the
    process, which is why requests are sent from here."""

    nba_response = _StatsResponse
    _session = None

    def __init__(self, base_url: str | None = None):
        if base_url:
            # NBAHTTP formats base_url with the endpoint name: ".../stats/{endpoint}".
            self.base_url = base_url.rstrip("/") + "/{endpoint}"


def _text(value: Any) -> str:
    """One JSON value as the text the landing file holds (None → empty, as pandas writes NaN)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _game_id(value: Any) -> str:
    text = _text(value).strip()
    return text.zfill(10) if text.isdigit() else text


_DATE_FORMATS = ("%Y-%m-%d", "%Y%m%d", "%Y-%m-%dT%H:%M:%S", "%b %d, %Y", "%m/%d/%Y")


def _parse_date(value: Any) -> date | None:
    text = _text(value).strip()
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None


def _empty(table: str) -> pd.DataFrame:
    return pd.DataFrame(columns=list(SOURCE_COLUMNS[table]), dtype="object")


def _frame(table: str, rows: list[dict[str, str]]) -> pd.DataFrame:
    if not rows:
        return _empty(table)
    return pd.DataFrame(rows, columns=list(SOURCE_COLUMNS[table]), dtype="object")


class NbaStatsApiSource(Source):
    """NBA.com's stats API through nba_api (production source, DESIGN §2)."""

    _block_type_name = "hoopflow NBA stats API source"
    name: ClassVar[str] = "nba_api"

    base_url: str | None = Field(
        default=None,
        description="Base of the stats endpoints; None → nba_api's https://stats.nba.com/stats.",
    )
    timeout_seconds: float = Field(default=30.0, description="Timeout of one HTTP request.")
    rate_limit_name: str = Field(
        default="nba-stats-api",
        description="Prefect global concurrency limit with slot decay taken before every call.",
    )
    season_type: str = Field(default="Regular Season", description="SeasonType of every call.")

    # ------------------------------------------------------------------ Source interface

    def game_dates(self, start: date, end: date) -> list[date]:
        if end < start:
            return []
        dates: set[date] = set()
        for season in _seasons_between(start, end):
            rows = self._league_game_log("T", start, end, season, TEAM_LOG_HEADERS)
            for i, row in enumerate(rows):
                d = self._row_date(row, LEAGUE_GAME_LOG, f"{start}..{end}", i)
                if start <= d <= end:
                    dates.add(d)
        return sorted(dates)

    def season_start(self, game_date: date) -> date:
        # The season's schedule (its league game log) from August of its first year.
        first_year = int(season_of(game_date)[:4])
        dates = self.game_dates(date(first_year, 8, 1), game_date)
        if not dates:
            raise ValueError(f"NBA.com lists no {self.season_type} game of {season_of(game_date)} up to {game_date}")
        return dates[0]

    def fetch(self, table: str, game_date: date) -> pd.DataFrame:
        if table not in SOURCE_TABLES:
            raise ValueError(f"unknown source table {table!r}; expected one of {SOURCE_TABLES}")
        if table == "player_box":
            return self._player_box(game_date)
        if table == "schedule":
            return self._schedule(game_date)
        return self._shots(game_date)

    def fingerprint(self, table: str, game_date: date) -> str:
        # Cheap by contract (no API call): a finished date's box scores do not change.
        # Re-extract a date on purpose with `--reprocess`.
        return f"nba_api:{table}:{game_date.isoformat()}:{self.season_type}"

    # ------------------------------------------------------------------ tables

    def _player_box(self, game_date: date) -> pd.DataFrame:
        season = season_of(game_date)
        rows = self._league_game_log("P", game_date, game_date, season, PLAYER_LOG_HEADERS)
        where = f"{LEAGUE_GAME_LOG} (PlayerOrTeam=P) for {game_date}"
        self._check_dates(rows, where, game_date)
        # The opponent of a player's team: the other team with rows in the same game.
        teams: dict[str, dict[str, str]] = {}
        for row in rows:
            teams.setdefault(_game_id(row["GAME_ID"]), {})[_text(row["TEAM_ID"])] = _text(
                row["TEAM_ABBREVIATION"]
            )
        for game_id, game_teams in teams.items():
            if len(game_teams) != 2:
                raise MalformedPayloadError(
                    f"{where}: game {game_id} has players of {len(game_teams)} team(s) "
                    f"{sorted(game_teams.values())}, expected 2"
                )
        out = []
        for i, row in enumerate(rows):
            game_id, team_id = _game_id(row["GAME_ID"]), _text(row["TEAM_ID"])
            opp_id, opp_abbr = next(
                (t, a) for t, a in teams[game_id].items() if t != team_id
            )
            out.append(
                {
                    "SEASON": season,
                    "SEASON_ID": _text(row["SEASON_ID"]),
                    "GAME_ID": game_id,
                    "GAME_DATE": game_date.isoformat(),
                    "MATCHUP": _text(row["MATCHUP"]),
                    "HOME_AWAY": self._home_away(row["MATCHUP"], where, i),
                    "TEAM_ID": team_id,
                    "TEAM_ABBREVIATION": _text(row["TEAM_ABBREVIATION"]),
                    "TEAM_NAME": _text(row["TEAM_NAME"]),
                    "OPP_TEAM_ID": opp_id,
                    "OPP_TEAM_ABBREVIATION": opp_abbr,
                    **{c: _text(row[c]) for c in _PLAYER_STATS},
                }
            )
        return _frame("player_box", out)

    def _schedule(self, game_date: date) -> pd.DataFrame:
        season = season_of(game_date)
        rows = self._league_game_log("T", game_date, game_date, season, TEAM_LOG_HEADERS)
        where = f"{LEAGUE_GAME_LOG} (PlayerOrTeam=T) for {game_date}"
        self._check_dates(rows, where, game_date)
        games: dict[str, dict[str, dict[str, Any]]] = {}
        for i, row in enumerate(rows):
            side = self._home_away(row["MATCHUP"], where, i)
            game = games.setdefault(_game_id(row["GAME_ID"]), {})
            if side in game:
                raise MalformedPayloadError(
                    f"{where}: game {_game_id(row['GAME_ID'])} has two "
                    f"{'home' if side == 'H' else 'away'} rows (MATCHUP {row['MATCHUP']!r}); a "
                    "neutral-site game has no 'vs.' row and cannot be given a home team"
                )
            game[side] = row
        out = []
        for game_id, game in games.items():
            if set(game) != {"H", "A"}:
                raise MalformedPayloadError(
                    f"{where}: game {game_id} has only the "
                    f"{'home' if 'H' in game else 'away'} team's row, expected both"
                )
            home, away = game["H"], game["A"]
            if _text(home["WL"]) not in ("W", "L"):
                raise MalformedPayloadError(
                    f"{where}: game {game_id}: WL is {home['WL']!r}, expected 'W' or 'L'"
                )
            out.append(
                {
                    "SEASON": season,
                    "GAME_ID": game_id,
                    "GAME_DATE": game_date.isoformat(),
                    "HOME_TEAM_ID": _text(home["TEAM_ID"]),
                    "HOME_TEAM_ABBREVIATION": _text(home["TEAM_ABBREVIATION"]),
                    "HOME_TEAM_NAME": _text(home["TEAM_NAME"]),
                    "AWAY_TEAM_ID": _text(away["TEAM_ID"]),
                    "AWAY_TEAM_ABBREVIATION": _text(away["TEAM_ABBREVIATION"]),
                    "AWAY_TEAM_NAME": _text(away["TEAM_NAME"]),
                    "HOME_PTS": _text(home["PTS"]),
                    "AWAY_PTS": _text(away["PTS"]),
                    "WINNER": "H" if _text(home["WL"]) == "W" else "A",
                    "NUM_OT": self._overtimes(home, away, where, game_id),
                }
            )
        return _frame("schedule", out)

    def _shots(self, game_date: date) -> pd.DataFrame:
        season = season_of(game_date)
        endpoint = ShotChartDetail(
            team_id=0,
            player_id=0,
            context_measure_simple="FGA",
            season_nullable=season,
            season_type_all_star=self.season_type,
            date_from_nullable=_api_date(game_date),
            date_to_nullable=_api_date(game_date),
            get_request=False,
        )
        where = f"{SHOT_CHART_DETAIL} for {game_date}"
        payload = self._request(endpoint.endpoint, endpoint.parameters, where)
        rows = _result_set(payload, "Shot_Chart_Detail", SHOT_HEADERS, where)
        self._check_dates(rows, where, game_date)
        out = []
        for i, row in enumerate(rows):
            shot_type = _SHOT_TYPES.get(_text(row["SHOT_TYPE"]))
            if shot_type is None:
                raise MalformedPayloadError(
                    f"{where}: row {i}: SHOT_TYPE {row['SHOT_TYPE']!r} is neither "
                    f"{' nor '.join(map(repr, _SHOT_TYPES))}"
                )
            loc_x = self._number(row, "LOC_X", where, i)
            loc_y = self._number(row, "LOC_Y", where, i)
            out.append(
                {
                    "GAME_ID": _game_id(row["GAME_ID"]),
                    "GAME_DATE": game_date.isoformat(),
                    "TEAM_ID": _text(row["TEAM_ID"]),
                    "PLAYER_ID": _text(row["PLAYER_ID"]),
                    "PERIOD": _text(row["PERIOD"]),
                    "MINS_LEFT": _text(row["MINUTES_REMAINING"]),
                    "SECS_LEFT": _text(row["SECONDS_REMAINING"]),
                    "SHOT_MADE": _text(row["SHOT_MADE_FLAG"]),
                    "SHOT_TYPE": shot_type,
                    "ACTION_TYPE": _text(row["ACTION_TYPE"]),
                    "BASIC_ZONE": _text(row["SHOT_ZONE_BASIC"]),
                    "ZONE_NAME": _AREA_ABBREVIATION.sub("", _text(row["SHOT_ZONE_AREA"])),
                    "ZONE_RANGE": _text(row["SHOT_ZONE_RANGE"]),
                    # Court coordinates. NBA.com's shotchartdetail gives LOC_X/LOC_Y in tenths
                    # of a foot with the hoop at (0, 0) (the bundled shots invert to raw
                    # LOC_X −250…250, LOC_Y −51…842) and a *negative* raw LOC_X on the "Left
                    # Side": Kaggle's "Kobe Bryant Shot Selection" data.csv, a stats.nba.com
                    # shotchartdetail export, has loc_x −157 "Left Side(L)", −101 "Left Side
                    # Center(LC)", 138 "Right Side Center(RC)" (shot_id 2, 3, 4). The bundled
                    # season (DomSamangy/NBA_Shots_04_25: README "LOC_X … (0, 50)"; its
                    # NBA_Shots_Tutorial.Rmd draws the hoop at y = 4 + 0.5 + 0.75 = 5.25 ft)
                    # has *positive* LOC_X on "Left Side" and LOC_Y from the baseline. Its text
                    # is reproduced bit for bit, on all 218,701 bundled rows, by exactly
                    # LOC_X = raw / −10 (every raw 0 became "-0.0", never "0.0") and
                    # LOC_Y = raw / 10 + 5.25 (float artefacts such as "1.9500000000000002" =
                    # −33 / 10 + 5.25). Same float operations here, so the same text.
                    "LOC_X": repr(loc_x / -10),
                    "LOC_Y": repr(loc_y / 10 + 5.25),
                    "SHOT_DISTANCE": _text(row["SHOT_DISTANCE"]),
                }
            )
        return _frame("shots", out)

    # ------------------------------------------------------------------ helpers

    def _league_game_log(
        self, mode: str, start: date, end: date, season: str, headers: Sequence[str]
    ) -> list[dict[str, Any]]:
        endpoint = LeagueGameLog(
            player_or_team_abbreviation=mode,
            season=season,
            season_type_all_star=self.season_type,
            date_from_nullable=_api_date(start),
            date_to_nullable=_api_date(end),
            get_request=False,
        )
        span = str(start) if start == end else f"{start}..{end}"
        where = f"{LEAGUE_GAME_LOG} (PlayerOrTeam={mode}) for {span}"
        payload = self._request(endpoint.endpoint, endpoint.parameters, where)
        return _result_set(payload, "LeagueGameLog", headers, where)

    def _request(self, endpoint: str, parameters: dict[str, Any], where: str) -> Any:
        """One HTTP GET (after a rate-limit slot) → the parsed JSON body, or a typed error."""
        rate_limit(self.rate_limit_name, strict=False)
        # nba_api's browser-like headers, but only the encodings urllib3 can decode here:
        # nba_api advertises "br", and without the optional brotli package a brotli answer
        # would reach us as undecodable bytes.
        headers = {**STATS_HEADERS, "Accept-Encoding": ACCEPT_ENCODING}
        if self.base_url:
            # nba_api pins "Host: stats.nba.com"; another base URL must get its own Host.
            headers.pop("Host", None)
        try:
            response = _StatsHTTP(self.base_url).send_api_request(
                endpoint=endpoint,
                parameters=parameters,
                headers=headers,
                timeout=self.timeout_seconds,
            )
        except requests.Timeout as exc:
            raise TransientSourceError(
                f"{where}: no answer within {self.timeout_seconds} s ({type(exc).__name__})"
            ) from exc
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            raise TransientSourceError(f"{where}: connection failed: {exc}") from exc

        status, body = response.status_code, response.get_response()
        if status == 429 or (status is not None and status >= 500):
            raise TransientSourceError(f"{where}: HTTP {status}: {_snippet(body)}")
        if status is not None and not 200 <= status < 300:
            raise MalformedPayloadError(f"{where}: HTTP {status}: {_snippet(body)}")
        try:
            return json.loads(body)
        except ValueError as exc:
            raise MalformedPayloadError(
                f"{where}: the body is not JSON ({exc}): {_snippet(body)}"
            ) from None

    @staticmethod
    def _home_away(matchup: Any, where: str, i: int) -> str:
        text = _text(matchup)
        if " vs. " in text:
            return "H"
        if " @ " in text:
            return "A"
        raise MalformedPayloadError(
            f"{where}: row {i}: MATCHUP {text!r} has neither ' vs. ' (home) nor ' @ ' (away)"
        )

    @staticmethod
    def _number(row: dict[str, Any], field: str, where: str, i: int) -> int | float:
        value = row[field]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and _INTEGER.match(value.strip()):
            return int(value)
        raise MalformedPayloadError(f"{where}: row {i}: {field} {value!r} is not a number")

    @staticmethod
    def _overtimes(home: dict[str, Any], away: dict[str, Any], where: str, game_id: str) -> str:
        """Overtime periods from the team game minutes. LeagueGameLog (T) gives a team's total
        player minutes: 240 in regulation, +25 per overtime (5 players × 5 min). A source on
        the game-clock scale (48, +5 per overtime), as the bundled team totals were, is
        recognised too."""
        minutes = []
        for row in (home, away):
            value = row["MIN"]
            try:
                minutes.append(float(value))
            except (TypeError, ValueError):
                raise MalformedPayloadError(
                    f"{where}: game {game_id}: MIN {value!r} is not a number"
                ) from None
        m = max(minutes)
        periods = (m - 240) / 25 if m >= 100 else (m - 48) / 5
        return str(max(0, round(periods)))

    @staticmethod
    def _row_date(row: dict[str, Any], endpoint: str, span: str, i: int) -> date:
        d = _parse_date(row["GAME_DATE"])
        if d is None:
            raise MalformedPayloadError(
                f"{endpoint} for {span}: row {i}: GAME_DATE {row['GAME_DATE']!r} is not a date"
            )
        return d

    def _check_dates(self, rows: Iterable[dict[str, Any]], where: str, game_date: date) -> None:
        for i, row in enumerate(rows):
            d = _parse_date(row["GAME_DATE"])
            if d != game_date:
                raise MalformedPayloadError(
                    f"{where}: row {i}: GAME_DATE {row['GAME_DATE']!r} is not the requested date"
                )


def _snippet(body: Any, limit: int = 200) -> str:
    text = str(body or "").strip().replace("\n", " ")
    return repr(text[:limit] + ("…" if len(text) > limit else "")) if text else "(empty body)"


def _result_set(
    payload: Any, name: str, headers: Sequence[str], where: str
) -> list[dict[str, Any]]:
    """The rows of result set `name` as dicts, after checking the resultSets contract:
    an object with `resultSets` (a list, or one object), the named set with `headers` and
    `rowSet`, every expected header present, every row as long as the headers."""
    if not isinstance(payload, dict) or "resultSets" not in payload:
        found = sorted(payload)[:8] if isinstance(payload, dict) else type(payload).__name__
        raise MalformedPayloadError(f"{where}: no 'resultSets' in the response (found {found})")
    sets = payload["resultSets"]
    sets = [sets] if isinstance(sets, dict) else sets
    if not isinstance(sets, list) or not all(isinstance(s, dict) for s in sets):
        raise MalformedPayloadError(f"{where}: 'resultSets' is not a list of result sets")
    named = [s for s in sets if s.get("name") == name]
    if not named:
        raise MalformedPayloadError(
            f"{where}: no result set {name!r} (found {[s.get('name') for s in sets]})"
        )
    result = named[0]
    for key in ("headers", "rowSet"):
        if not isinstance(result.get(key), list):
            raise MalformedPayloadError(f"{where}: result set {name!r} has no {key!r} list")
    got: list[Any] = result["headers"]
    missing = [h for h in headers if h not in got]
    if missing:
        raise MalformedPayloadError(
            f"{where}: result set {name!r} lacks expected header(s) {missing}"
        )
    rows = []
    for i, raw in enumerate(result["rowSet"]):
        if not isinstance(raw, list) or len(raw) != len(got):
            size = len(raw) if isinstance(raw, list) else type(raw).__name__
            raise MalformedPayloadError(
                f"{where}: result set {name!r} row {i} has {size} values for {len(got)} headers"
            )
        rows.append(dict(zip(got, raw, strict=True)))
    return rows

