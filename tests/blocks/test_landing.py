"""One contract for every landing zone: a local folder, and a GCS bucket served by a real
gcp-storage-emulator and reached through prefect-gcp blocks saved in a temporary Prefect API
(configured both ways: bucket + GcpCredentials block, and a GcsBucket block).

What a zone stored is checked behind its back (the folder itself, or a separate raw client
listing the bucket), not only through the zone's own read_bytes."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from blocks.landing import GcsLandingZone, LandingZone, LocalLandingZone, storage_client
from blocks.settings import get_settings, reset_settings
from tests.conftest import make_service_account_info

BUCKET = "hoopflow-landing-test"
PROJECT = "hoopflow-test"
SA_EMAIL = f"landing@{PROJECT}.iam.gserviceaccount.com"
CREDS_BLOCK = "landing-test-credentials"
BUCKET_BLOCK = "landing-test-bucket"
BUCKET_BLOCK_FOLDER = "hoopflow"  # the GcsBucket block's own folder; the zone nests inside it
FILE = "player_box/2024-01-15.csv"
CSV = b"GAME_ID,PLAYER_ID,PTS\n0022300001,201939,31\n"


@dataclass
class Zone:
    landing: LandingZone
    expected_uri: Callable[[str], str]
    stored: Callable[[], dict[str, bytes]]  # every file under the zone, by relative path


# --- the GCS emulator and the prefect-gcp blocks ------------------------------------------


@pytest.fixture(scope="session")
def gcs_emulator() -> Iterator[str]:
    """A gcp-storage-emulator server (in-process thread, in memory) holding BUCKET."""
    from gcp_storage_emulator.server import create_server

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = create_server("127.0.0.1", port, in_memory=True, default_bucket=BUCKET)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="session")
def raw_bucket(gcs_emulator: str):
    """The emulator's bucket through a plain anonymous client: the independent view."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(
        project=PROJECT,
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": gcs_emulator},
    )
    return client.bucket(BUCKET)


@pytest.fixture(scope="session")
def service_account_info() -> dict[str, str]:
    return make_service_account_info(PROJECT, SA_EMAIL)


@pytest.fixture(scope="session")
def gcp_blocks(prefect_api: None, service_account_info: dict[str, str]) -> None:
    """A GcpCredentials block and a GcsBucket block saved in the temporary Prefect API."""
    from prefect_gcp import GcpCredentials
    from prefect_gcp.cloud_storage import GcsBucket

    credentials = GcpCredentials(service_account_info=service_account_info)
    credentials.save(CREDS_BLOCK, overwrite=True)
    GcsBucket(
        bucket=BUCKET, bucket_folder=BUCKET_BLOCK_FOLDER, gcp_credentials=credentials
    ).save(BUCKET_BLOCK, overwrite=True)


def _gcs_zone(request: pytest.FixtureRequest, via_bucket_block: bool) -> Zone:
    emulator = request.getfixturevalue("gcs_emulator")
    request.getfixturevalue("gcp_blocks")
    request.getfixturevalue("monkeypatch").setenv("STORAGE_EMULATOR_HOST", emulator)
    raw_bucket = request.getfixturevalue("raw_bucket")

    folder = f"landing-{uuid.uuid4().hex[:8]}"  # one folder per test: tests never share files
    if via_bucket_block:
        landing = GcsLandingZone(gcs_bucket_block=BUCKET_BLOCK, bucket_folder=folder)
        prefix = f"{BUCKET_BLOCK_FOLDER}/{folder}/"
    else:
        landing = GcsLandingZone(bucket=BUCKET, bucket_folder=folder, credentials_block=CREDS_BLOCK)
        prefix = f"{folder}/"

    def stored() -> dict[str, bytes]:
        return {
            blob.name.removeprefix(prefix): blob.download_as_bytes()
            for blob in raw_bucket.list_blobs(prefix=prefix)
        }

    return Zone(landing, lambda path: f"gs://{BUCKET}/{prefix}{path}", stored)


@pytest.fixture(params=["local", "gcs-credentials-block", "gcs-bucket-block"])
def zone(request: pytest.FixtureRequest, tmp_path: Path) -> Zone:
    if request.param == "local":
        root = tmp_path.resolve() / "landing"

        def stored() -> dict[str, bytes]:
            return {
                f.relative_to(root).as_posix(): f.read_bytes()
                for f in root.rglob("*")
                if f.is_file()
            }

        return Zone(LocalLandingZone(path=str(root)), lambda path: str(root / path), stored)
    return _gcs_zone(request, via_bucket_block=request.param == "gcs-bucket-block")


# --- the contract ------------------------------------------------------------------------


def test_write_then_read_returns_the_same_bytes(zone: Zone) -> None:
    data = CSV + "Dončić,\u00e9\n".encode() + bytes(range(256))  # any bytes, not only text
    uri = zone.landing.write_bytes(FILE, data)

    assert uri == zone.expected_uri(FILE)
    assert zone.landing.read_bytes(FILE) == data
    assert zone.stored() == {FILE: data}


def test_overwrite_replaces_the_file(zone: Zone) -> None:
    zone.landing.write_bytes(FILE, CSV + CSV)
    zone.landing.write_bytes(FILE, b"GAME_ID\n")

    assert zone.landing.read_bytes(FILE) == b"GAME_ID\n"
    assert zone.stored() == {FILE: b"GAME_ID\n"}


def test_exists(zone: Zone) -> None:
    assert not zone.landing.exists(FILE)
    zone.landing.write_bytes(FILE, CSV)

    assert zone.landing.exists(FILE)
    assert not zone.landing.exists("player_box/2024-01-16.csv")
    assert not zone.landing.exists("player_box")  # a folder is not a landing file


def test_reading_a_missing_file_raises_file_not_found(zone: Zone) -> None:
    with pytest.raises(FileNotFoundError):
        zone.landing.read_bytes(FILE)

    zone.landing.write_bytes(FILE, CSV)
    with pytest.raises(FileNotFoundError):
        zone.landing.read_bytes("player_box")
    with pytest.raises(FileNotFoundError):
        zone.landing.read_bytes("shots/2024-01-15.csv")


def test_uri_names_the_file(zone: Zone) -> None:
    assert zone.landing.uri(FILE) == zone.expected_uri(FILE)  # known before it is written
    assert zone.landing.write_bytes(FILE, CSV) == zone.landing.uri(FILE)


def test_nested_paths_land_where_named_and_nothing_else(zone: Zone) -> None:
    files = {
        FILE: CSV,
        "player_box/2024-01-16.csv": b"GAME_ID\n1\n",
        "shots/2024-01-15.csv": b"GAME_ID,SHOT\n",
    }
    for path, data in files.items():
        assert zone.landing.write_bytes(path, data) == zone.expected_uri(path)

    assert {path: zone.landing.read_bytes(path) for path in files} == files
    # Exactly these files: no temporary (.partial) file or stray object left behind.
    assert zone.stored() == files


# --- local zone -------------------------------------------------------------------------


def test_local_failed_write_leaves_no_partial_file(tmp_path: Path) -> None:
    landing = LocalLandingZone(path=str(tmp_path))
    landing.write_bytes(FILE, CSV)

    with pytest.raises(OSError):  # the rename fails: `player_box` is a folder
        landing.write_bytes("player_box", CSV)

    left = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*"))
    assert left == ["player_box", FILE]


# --- GCS zone ---------------------------------------------------------------------------


def test_gcs_production_client_uses_the_credentials_block(
    gcp_blocks: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without an emulator the client carries the block's service account and talks to Google
    (built only: nothing is sent); with one, it is anonymous and talks to the emulator."""
    from google.auth.credentials import AnonymousCredentials
    from google.oauth2.service_account import Credentials
    from prefect_gcp import GcpCredentials

    credentials = GcpCredentials.load(CREDS_BLOCK)

    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    client = storage_client(credentials)
    assert isinstance(client._credentials, Credentials)
    assert client._credentials.service_account_email == SA_EMAIL
    assert client.project == PROJECT
    assert client._connection.API_BASE_URL == "https://storage.googleapis.com"

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9")
    client = storage_client(credentials)
    assert isinstance(client._credentials, AnonymousCredentials)
    assert client._connection.API_BASE_URL == "http://127.0.0.1:9"


def test_gcs_zone_from_settings(
    gcs_emulator: str, gcp_blocks: None, raw_bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The HOOPFLOW_LANDING__* variables production sets build a working GCS zone."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator)
    monkeypatch.setenv("HOOPFLOW_LANDING__KIND", "gcs")
    monkeypatch.setenv("HOOPFLOW_LANDING__GCS_BUCKET_BLOCK", BUCKET_BLOCK)
    monkeypatch.setenv("HOOPFLOW_LANDING__BUCKET_FOLDER", "from-settings/")
    reset_settings()
    try:
        landing = get_settings().landing_block()
        uri = landing.write_bytes(FILE, CSV)
    finally:
        reset_settings()

    name = f"{BUCKET_BLOCK_FOLDER}/from-settings/{FILE}"
    assert uri == f"gs://{BUCKET}/{name}"
    assert raw_bucket.blob(name).download_as_bytes() == CSV


def test_gcs_zone_without_a_bucket_is_refused() -> None:
    with pytest.raises(ValueError, match="BUCKET"):
        GcsLandingZone().exists(FILE)
