"""The landing zone: where each extracted source file lands (one per source table and date)
before it is loaded. Files are kept after loading, so a bad file can be inspected."""

from __future__ import annotations

import os
import uuid
from abc import abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from prefect.blocks.core import Block
from pydantic import Field, PrivateAttr

if TYPE_CHECKING:  # google-cloud-storage is imported only when a GCS zone is used
    from google.cloud.storage import Blob, Bucket, Client
    from prefect_gcp import GcpCredentials


class LandingZone(Block):
    """Write, read and test files by a relative path (`player_box/2024-01-15.csv`)."""

    _block_schema_capabilities: ClassVar[list[str]] = ["landing-zone"]

    @abstractmethod
    def write_bytes(self, path: str, data: bytes) -> str:
        """Write (or overwrite) a file; return its URI."""

    @abstractmethod
    def read_bytes(self, path: str) -> bytes:
        """Read a file; FileNotFoundError when it is not there."""

    @abstractmethod
    def exists(self, path: str) -> bool: ...

    @abstractmethod
    def uri(self, path: str) -> str:
        """Where a person finds the file (a local path or gs:// URI)."""


class LocalLandingZone(LandingZone):
    """A local folder (embedded default: $HOOPFLOW_HOME/landing)."""

    _block_type_name = "hoopflow local landing zone"

    path: str = Field(description="Folder that holds the landing files.")

    def _file(self, path: str) -> Path:
        return Path(self.path) / path

    def write_bytes(self, path: str, data: bytes) -> str:
        target = self._file(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename: a killed run never leaves a half-written landing file. The temporary
        # name is unique, so two concurrent writers of one file never share it.
        tmp = target.with_name(f"{target.name}.{uuid.uuid4().hex}.partial")
        try:
            tmp.write_bytes(data)
            tmp.replace(target)
        finally:
            tmp.unlink(missing_ok=True)  # only still there when the write failed
        return self.uri(path)

    def read_bytes(self, path: str) -> bytes:
        file = self._file(path)
        if not file.is_file():  # a folder is no landing file either (as on GCS)
            raise FileNotFoundError(str(file))
        return file.read_bytes()

    def exists(self, path: str) -> bool:
        return self._file(path).is_file()

    def uri(self, path: str) -> str:
        return str(self._file(path).resolve())


class GcsLandingZone(LandingZone):
    """A folder of a GCS bucket (production), through prefect-gcp. Configure either `bucket`
    (+ `credentials_block`; without it, application default credentials) or a saved GcsBucket
    block, whose own `bucket_folder` then holds this zone's `bucket_folder`."""

    _block_type_name = "hoopflow GCS landing zone"

    bucket: str | None = Field(default=None, description="Bucket name (or use gcs_bucket_block).")
    bucket_folder: str = Field(default="landing", description="Folder inside the bucket.")
    gcs_bucket_block: str | None = Field(
        default=None, description="Name of a saved prefect-gcp GcsBucket block."
    )
    credentials_block: str | None = Field(
        default=None, description="Name of a saved GcpCredentials block (with `bucket`)."
    )
    # (bucket, folder) resolved once per instance: loading blocks and authenticating cost calls.
    _target: tuple[Bucket, str] | None = PrivateAttr(default=None)

    def _blob(self, path: str) -> Blob:
        if self._target is None:
            from prefect_gcp import GcpCredentials
            from prefect_gcp.cloud_storage import GcsBucket

            if self.gcs_bucket_block:
                block = GcsBucket.load(self.gcs_bucket_block)
                name, creds = block.bucket, block.gcp_credentials
                folders = [block.bucket_folder, self.bucket_folder]
            elif self.bucket:
                name, folders = self.bucket, [self.bucket_folder]
                creds = self.credentials_block and GcpCredentials.load(self.credentials_block)
            else:
                raise ValueError(
                    "GCS landing zone needs HOOPFLOW_LANDING__BUCKET or __GCS_BUCKET_BLOCK"
                )
            # client.bucket() is a local handle: no buckets.get call, no bucket-level permission.
            folder = "/".join(f.strip("/") for f in folders if f.strip("/"))
            self._target = storage_client(creds).bucket(name), folder
        bucket, folder = self._target
        return bucket.blob(f"{folder}/{path}" if folder else path)

    def write_bytes(self, path: str, data: bytes) -> str:
        from google.cloud.storage.retry import DEFAULT_RETRY

        # No write-then-rename needed: a GCS upload is atomic (the object appears or is replaced
        # only once complete). Rewriting the same bytes is idempotent, so it is safe to retry.
        self._blob(path).upload_from_string(data, retry=DEFAULT_RETRY)
        return self.uri(path)

    def read_bytes(self, path: str) -> bytes:
        from google.api_core.exceptions import NotFound

        try:
            return self._blob(path).download_as_bytes()
        except NotFound as exc:
            raise FileNotFoundError(self.uri(path)) from exc

    def exists(self, path: str) -> bool:
        return self._blob(path).exists()

    def uri(self, path: str) -> str:
        blob = self._blob(path)
        return f"gs://{blob.bucket.name}/{blob.name}"


def storage_client(credentials: GcpCredentials | None) -> Client:
    """A storage client authenticated by `credentials` (None: application default credentials).

    With STORAGE_EMULATOR_HOST set (a local GCS emulator) the client is anonymous instead:
    google-cloud-storage only skips authentication for an emulator when given no credentials,
    and prefect-gcp always passes its own, which would fetch an OAuth token from Google.
    """
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage
    from prefect_gcp import GcpCredentials

    if os.environ.get("STORAGE_EMULATOR_HOST"):
        project = credentials.project if credentials else None
        return storage.Client(project=project, credentials=AnonymousCredentials())
    return (credentials or GcpCredentials()).get_cloud_storage_client()
