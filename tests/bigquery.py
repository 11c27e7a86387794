"""The BigQuery emulator (the bqemulator package, from .venv-bqemu) as a session fixture:
the BigQuery REST API on a loopback port. Cloud BigQuery cannot run here; this is the
narrowest stand-in: the real client libraries talk HTTP to it."""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from blocks.settings import REPO_ROOT

BQEMU_PYTHON = REPO_ROOT / ".venv-bqemu" / "bin" / "python"
BQEMU_SERVER = Path(__file__).resolve().parent / "bqemulator_server.py"
PROJECT = "hoopflow-test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def bigquery_emulator() -> Iterator[str]:
    """A bqemulator server for the session; yields its endpoint (`http://127.0.0.1:PORT`)."""
    if not BQEMU_PYTHON.exists():
        pytest.fail(
            f"{BQEMU_PYTHON} is missing: the BigQuery tests need the emulator's own virtual "
            "environment. Create it with `make .venv-bqemu/.installed` (`make test` does it).",
            pytrace=False,
        )
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = tempfile.NamedTemporaryFile(prefix="bqemulator-", suffix=".log", delete=False)
    server = subprocess.Popen(
        [
            str(BQEMU_PYTHON), str(BQEMU_SERVER), "--rest-port", str(port), "--grpc-port", "0",
            "--project", PROJECT, "--ephemeral", "--log-level", "warning",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    mp = pytest.MonkeyPatch()
    try:
        _wait_ready(server, endpoint, Path(log.name))
        # The emulator rejects the client's multipart uploads (their media part is sent as
        # `*/*`): make every load a resumable upload.
        mp.setattr("google.cloud.bigquery.client._MAX_MULTIPART_SIZE", 0)
        # The block sets BIGQUERY_EMULATOR_HOST for pandas-gbq's own client (large results);
        # start without it, and leave the process as it was.
        mp.delenv("BIGQUERY_EMULATOR_HOST", raising=False)
        yield endpoint
    finally:
        mp.undo()
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
        Path(log.name).unlink(missing_ok=True)


def _wait_ready(server: subprocess.Popen[bytes], endpoint: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"bqemulator exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{endpoint}/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail(f"bqemulator not ready after 60 s:\n{log.read_text()[-3000:]}")


