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


def minio_command(
    binary: Path,
    *,
    data_dir: Path,
    api_address: str,
    console_address: str,
    root_user: str,
    root_password: str,
) -> tuple[list[str], dict[str, str]]:
    """MinIO's command line and environment: one drive at ``data_dir``, S3 on ``api_address``.

    Shared by the stack and by the fault suite, which runs a MinIO of its own.
    """
    argv = [
        str(binary),
        "server",
        str(data_dir),
        "--address",
        api_address,
        "--console-address",
        console_address,
        "--quiet",
    ]
    env = {
        "MINIO_ROOT_USER": root_user,
        "MINIO_ROOT_PASSWORD": root_password,
        "MINIO_REGION": S3_REGION,
        # The archived server has no releases to update to.
        "MINIO_UPDATE": "off",
    }
    return argv, env


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
        argv, env = minio_command(
            self.binary(ctx),
            data_dir=self._data(ctx),
            api_address=API_ADDRESS,
            console_address=f"{LOOPBACK}:{MINIO_CONSOLE_PORT}",
            root_user=ctx.credentials.minio_root_user,
            root_password=ctx.credentials.minio_root_password,
        )
        return LaunchSpec(argv=argv, cwd=ctx.paths.part_dir(self.name), env=env)

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
