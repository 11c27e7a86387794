"""The landing zone: where each extracted source file lands (one per source table and date)
before it is loaded. Files are kept after loading, so a bad file can be inspected."""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import ClassVar

from prefect.blocks.core import Block
from pydantic import Field


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
        # Write then rename: a killed run never leaves a half-written landing file.
        tmp = target.with_name(target.name + ".partial")
        tmp.write_bytes(data)
        tmp.replace(target)
        return self.uri(path)

    def read_bytes(self, path: str) -> bytes:
        return self._file(path).read_bytes()

    def exists(self, path: str) -> bool:
        return self._file(path).is_file()

    def uri(self, path: str) -> str:
        return str(self._file(path).resolve())


class GcsLandingZone(LandingZone):
    """A GCS bucket folder through prefect-gcp's GcsBucket (production)."""

    _block_type_name = "hoopflow GCS landing zone"

    bucket: str | None = Field(default=None, description="Bucket name (or use gcs_bucket_block).")
    bucket_folder: str = Field(default="landing", description="Folder inside the bucket.")
    gcs_bucket_block: str | None = Field(
        default=None, description="Name of a saved prefect-gcp GcsBucket block."
    )
    credentials_block: str | None = Field(
        default=None, description="Name of a saved GcpCredentials block (with `bucket`)."
    )

    def _bucket(self):
        from prefect_gcp import GcpCredentials
        from prefect_gcp.cloud_storage import GcsBucket

        if self.gcs_bucket_block:
            gcs = GcsBucket.load(self.gcs_bucket_block)
            return gcs.model_copy(update={"bucket_folder": self.bucket_folder})
        if not self.bucket:
            raise ValueError("GCS landing zone needs HOOPFLOW_LANDING__BUCKET or __GCS_BUCKET_BLOCK")
        creds = (
            GcpCredentials.load(self.credentials_block)
            if self.credentials_block
            else GcpCredentials()
        )
        return GcsBucket(bucket=self.bucket, bucket_folder=self.bucket_folder, gcp_credentials=creds)

    def write_bytes(self, path: str, data: bytes) -> str:
        self._bucket().write_path(path, data)
        return self.uri(path)

    def read_bytes(self, path: str) -> bytes:
        from google.api_core.exceptions import NotFound

        try:
            return self._bucket().read_path(path)
        except NotFound as exc:
            raise FileNotFoundError(self.uri(path)) from exc

    def exists(self, path: str) -> bool:
        bucket = self._bucket()
        return bucket.get_bucket().blob(bucket._join_bucket_folder(path)).exists()

    def uri(self, path: str) -> str:
        bucket = self.bucket or self.gcs_bucket_block
        return f"gs://{bucket}/{self.bucket_folder.strip('/')}/{path}"
