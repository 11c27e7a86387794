"""A local stand-in for stats.nba.com serving the recorded responses of tests/fixtures/nba_api.

A real HTTP server (http.server on 127.0.0.1, a free port, one thread per request) that
answers `/leaguegamelog` and `/shotchartdetail` like NBA.com: the recorded rows whose date is
within [DateFrom, DateTo] (MM/DD/YYYY) and whose season / season type match the request, in
the recorded envelope with the request's parameters echoed. It logs every request, and can be
told to misbehave: answer a status (429, 500, ...), a given body, or hang past the client's
timeout, for the next N requests (or all of them).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "nba_api"
# First digit of SEASON_ID / third of GAME_ID by season type (NBA.com's id scheme).
SEASON_TYPE_DIGIT = {"Pre Season": "1", "Regular Season": "2", "All Star": "3", "Playoffs": "4"}
NBA_ERROR_BODY = '{"Message":"An error has occurred."}'


@dataclass
class Fault:
    status: int = 200
    body: str | None = None  # None: the normal answer (with `status`)
    delay: float = 0.0  # seconds to wait before answering
    times: int | None = 1  # None: every request from now on
    path: str | None = None  # only requests to this endpoint


@dataclass
class Request:
    path: str
    params: dict[str, str]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class RecordedNbaStats:
    """The server's state: recorded payloads, the request log and queued faults."""

    payloads: dict[str, list[dict]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)
    url: str = ""

    def fail(self, status: int = 500, body: str | None = None, times: int | None = 1,
             path: str | None = None, delay: float = 0.0) -> None:  # fmt: skip
        with self.lock:
            self.faults.append(Fault(status, body, delay, times, path))

    def hang(self, seconds: float, times: int | None = 1, path: str | None = None) -> None:
        self.fail(200, None, times, path, delay=seconds)

    def requests_to(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    def _next_fault(self, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.path in (None, path):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self.faults.remove(fault)
                    return fault
        return None

    def answer(
        self, path: str, params: dict[str, str], headers: dict[str, str] | None = None
    ) -> tuple[int, str, float]:
        with self.lock:
            self.requests.append(Request(path, params, headers or {}))
        fault = self._next_fault(path)
        if fault is None or (fault.status == 200 and fault.body is None):
            status, body = self._recorded(path, params)
            return status, body, fault.delay if fault else 0.0
        if fault.body is not None:
            return fault.status, fault.body, fault.delay
        if fault.status >= 500:  # what NBA.com's API answers on a server error
            return fault.status, NBA_ERROR_BODY, fault.delay
        return fault.status, f"<html><body>HTTP {fault.status}</body></html>", fault.delay

    def _recorded(self, path: str, params: dict[str, str]) -> tuple[int, str]:
        if path not in ("leaguegamelog", "shotchartdetail"):
            return 404, f"unknown endpoint {path!r}"
        required = ("Season", "SeasonType", "LeagueID") + (
            ("PlayerOrTeam", "Counter", "Direction", "Sorter")
            if path == "leaguegamelog"
            else ("TeamID", "PlayerID", "ContextMeasure")
        )
        missing = [p for p in required if not params.get(p)]
        if missing:
            return 400, f"The field {missing[0]} is required."
        try:
            start = datetime.strptime(params.get("DateFrom") or "01/01/1900", "%m/%d/%Y").date()
            end = datetime.strptime(params.get("DateTo") or "12/31/2999", "%m/%d/%Y").date()
        except ValueError:
            return 400, "DateFrom/DateTo must be MM/DD/YYYY."
        type_digit = SEASON_TYPE_DIGIT.get(params["SeasonType"])
        if type_digit is None:
            return 400, f"SeasonType {params['SeasonType']!r} is not valid."
        game_id_prefix = f"00{type_digit}{params['Season'][2:4]}"
        key = path if path == "shotchartdetail" else f"{path}_{params['PlayerOrTeam']}"
        envelope: dict | None = None
        for recorded in self.payloads.get(key, []):
            if envelope is None:
                envelope = {
                    "resource": path,
                    "parameters": {k: (v or None) for k, v in sorted(params.items())},
                    "resultSets": [
                        {"name": s["name"], "headers": s["headers"], "rowSet": []}
                        for s in recorded["resultSets"]
                    ],
                }
            for out, s in zip(envelope["resultSets"], recorded["resultSets"], strict=True):
                h = s["headers"]
                for row in s["rowSet"]:
                    if "GAME_ID" not in h:  # LeagueAverages: not date-scoped
                        if row not in out["rowSet"]:
                            out["rowSet"].append(row)
                        continue
                    raw = str(row[h.index("GAME_DATE")])
                    iso = raw if "-" in raw else f"{raw[:4]}-{raw[4:6]}-{raw[6:]}"  # YYYYMMDD
                    day = date.fromisoformat(iso)
                    if start <= day <= end and row[h.index("GAME_ID")].startswith(game_id_prefix):
                        out["rowSet"].append(row)
        return 200, json.dumps(envelope or {"resource": path, "resultSets": []})


def _load_payloads() -> dict[str, list[dict]]:
    payloads: dict[str, list[dict]] = {}
    for file in sorted(FIXTURES.glob("*.json")):
        key = "_".join(file.stem.split("_")[:-1])  # leaguegamelog_P_2023-10-24 → leaguegamelog_P
        payloads.setdefault(key, []).append(json.loads(file.read_text(encoding="utf-8")))
    return payloads


def _handler(state: RecordedNbaStats) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            url = urlsplit(self.path)
            params = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
            endpoint = url.path.rstrip("/").rsplit("/", 1)[-1].lower()
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, body, delay = state.answer(endpoint, params, headers)
            if delay and state.stopping.wait(delay):
                return
            data = body.encode("utf-8")
            try:
                self.send_response(status)
                is_json = body.startswith("{")
                self.send_header(
                    "Content-Type", "application/json; charset=utf-8" if is_json else "text/html"
                )
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (its timeout)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@contextmanager
def serve_recorded_nba_stats() -> Iterator[RecordedNbaStats]:
    state = RecordedNbaStats(payloads=_load_payloads())
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name="nba-stats-stub",
        daemon=True,
    )
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/stats"
    try:
        yield state
    finally:
        state.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
