"""MinIO, the primary S3 server: built from source with Go at the pinned commit."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Final

from slidestream_devstack import versions
from slidestream_devstack.buckets import S3_REGION, ensure_buckets, s3_client
from slidestream_devstack.builds import go_install
from slidestream_devstack.part import LaunchSpec, Part, StackContext
from slidestream_devstack.ports import LOOPBACK, MINIO_API_PORT, MINIO_CONSOLE_PORT
from slidestream_devstack.readiness import http_ok

API_ADDRESS: Final = f"{LOOPBACK}:{MINIO_API_PORT}"
ENDPOINT: Final = f"http://{API_ADDRESS}"


class MinioPart(Part):
    name: ClassVar[str] = "minio"
    ports: ClassVar[tuple[int, ...]] = (MINIO_API_PORT, MINIO_CONSOLE_PORT)

    def binary(self, ctx: StackContext) -> Path:
        return ctx.paths.bin / "minio"

    def build(self, ctx: StackContext) -> None:
        go_install(
            module=versions.MINIO_MODULE,
            version=versions.MINIO_VERSION,
            binary=self.binary(ctx),
            console=ctx.console,
            log_path=ctx.paths.logs / "minio-build.log",
        )

    def _data(self, ctx: StackContext) -> Path:
        return ctx.paths.part_dir(self.name) / "data"

    def prepare(self, ctx: StackContext) -> None:
        self._data(ctx).mkdir(parents=True, exist_ok=True)

    def launch_spec(self, ctx: StackContext) -> LaunchSpec:
        return LaunchSpec(
            argv=[
                str(self.binary(ctx)),
                "server",
                str(self._data(ctx)),
                "--address",
                API_ADDRESS,
                "--console-address",
                f"{LOOPBACK}:{MINIO_CONSOLE_PORT}",
                "--quiet",
            ],
            cwd=ctx.paths.part_dir(self.name),
            env={
                "MINIO_ROOT_USER": ctx.credentials.minio_root_user,
                "MINIO_ROOT_PASSWORD": ctx.credentials.minio_root_password,
                "MINIO_REGION": S3_REGION,
                # The archived server has no releases to update to.
                "MINIO_UPDATE": "off",
            },
        )

    def is_ready(self, ctx: StackContext) -> bool:
        return http_ok(f"{ENDPOINT}/minio/health/ready")

    def provision(self, ctx: StackContext) -> None:
        ensure_buckets(
            s3_client(
                API_ADDRESS, ctx.credentials.minio_root_user, ctx.credentials.minio_root_password
            )
        )

    def endpoint(self, ctx: StackContext) -> str:
        return ENDPOINT

    def env(self, ctx: StackContext) -> dict[str, str]:
        return {
            "S3_ENDPOINT": ENDPOINT,
            "S3_ACCESS_KEY": ctx.credentials.minio_root_user,
            "S3_SECRET_KEY": ctx.credentials.minio_root_password,
            "S3_REGION": S3_REGION,
        }
