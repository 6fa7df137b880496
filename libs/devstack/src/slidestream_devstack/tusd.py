"""tusd, the reference tus server: the resumable byte path of uploads, stored in MinIO."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Final

from slidestream_devstack import versions
from slidestream_devstack.buckets import S3_REGION
from slidestream_devstack.builds import go_install
from slidestream_devstack.minio import ENDPOINT as MINIO_ENDPOINT
from slidestream_devstack.part import LaunchSpec, Part, StackContext
from slidestream_devstack.ports import LOOPBACK, TUSD_PORT
from slidestream_devstack.readiness import http_ok

BASE_PATH: Final = "/files/"
URL: Final = f"http://{LOOPBACK}:{TUSD_PORT}{BASE_PATH}"
UPLOAD_BUCKET: Final = "quarantine"


class TusdPart(Part):
    name: ClassVar[str] = "tusd"
    requires: ClassVar[tuple[str, ...]] = ("minio",)
    ports: ClassVar[tuple[int, ...]] = (TUSD_PORT,)

    def binary(self, ctx: StackContext) -> Path:
        return ctx.paths.bin / "tusd"

    def build(self, ctx: StackContext) -> None:
        go_install(
            module=versions.TUSD_MODULE,
            version=versions.TUSD_VERSION,
            binary=self.binary(ctx),
            console=ctx.console,
            log_path=ctx.paths.logs / "tusd-build.log",
        )

    def prepare(self, ctx: StackContext) -> None:
        ctx.paths.part_dir(self.name).mkdir(parents=True, exist_ok=True)

    def launch_spec(self, ctx: StackContext) -> LaunchSpec:
        argv = [
            str(self.binary(ctx)),
            "-host",
            LOOPBACK,
            "-port",
            str(TUSD_PORT),
            "-base-path",
            BASE_PATH,
            "-s3-bucket",
            UPLOAD_BUCKET,
            "-s3-endpoint",
            MINIO_ENDPOINT,
            "-show-greeting=false",
        ]
        if ctx.settings.tusd_hooks_url is not None:
            argv += ["-hooks-http", ctx.settings.tusd_hooks_url]
        return LaunchSpec(
            argv=argv,
            cwd=ctx.paths.part_dir(self.name),
            env={
                "AWS_ACCESS_KEY_ID": ctx.credentials.minio_root_user,
                "AWS_SECRET_ACCESS_KEY": ctx.credentials.minio_root_password,
                "AWS_REGION": S3_REGION,
            },
        )

    def is_ready(self, ctx: StackContext) -> bool:
        # OPTIONS is tus's capability discovery; it answers without touching the store.
        return http_ok(URL, method="OPTIONS")

    def endpoint(self, ctx: StackContext) -> str:
        return URL

    def env(self, ctx: StackContext) -> dict[str, str]:
        return {"TUS_URL": URL}
