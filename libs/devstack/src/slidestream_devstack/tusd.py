"""tusd, the reference tus server: the resumable byte path of uploads, stored in MinIO."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Final

from slidestream_devstack import versions
from slidestream_devstack.buckets import S3_REGION
from slidestream_devstack.builds import go_install
from slidestream_devstack.minio import ENDPOINT as MINIO_ENDPOINT
from slidestream_devstack.part import LaunchSpec, Part, StackContext
from slidestream_devstack.ports import LOOPBACK, TUSD_PORT, UPLOAD_PORT
from slidestream_devstack.readiness import http_ok

BASE_PATH: Final = "/files/"
URL: Final = f"http://{LOOPBACK}:{TUSD_PORT}{BASE_PATH}"
UPLOAD_BUCKET: Final = "quarantine"
HOOKS_URL: Final = f"http://{LOOPBACK}:{UPLOAD_PORT}/hooks/tusd"
HOOK_EVENTS: Final = (
    "pre-create",
    "post-create",
    "post-receive",
    "pre-terminate",
    "post-terminate",
    "post-finish",
)
"""pre-create admits (auth, quota), pre-terminate guards cancellation, post-* keep the record."""
HOOK_RETRIES: Final = 5
HOOK_BACKOFF: Final = "1s"


def tusd_command(
    binary: Path,
    *,
    host: str,
    port: int,
    s3_endpoint: str,
    s3_access_key: str,
    s3_secret_key: str,
    hooks_url: str | None,
) -> tuple[list[str], dict[str, str]]:
    """tusd's command line and environment: S3 store in quarantine, hooks to the upload service.

    Shared by the stack and by tests that run a private tusd next to a private upload service.
    """
    argv = [
        str(binary),
        "-host",
        host,
        "-port",
        str(port),
        "-base-path",
        BASE_PATH,
        "-s3-bucket",
        UPLOAD_BUCKET,
        "-s3-endpoint",
        s3_endpoint,
        "-show-greeting=false",
    ]
    if hooks_url is not None:
        argv += [
            "-hooks-http",
            hooks_url,
            "-hooks-enabled-events",
            ",".join(HOOK_EVENTS),
            # The partner's bearer token reaches the hooks, which authenticate it.
            "-hooks-http-forward-headers",
            "Authorization",
            "-hooks-http-retry",
            str(HOOK_RETRIES),
            "-hooks-http-backoff",
            HOOK_BACKOFF,
        ]
    env = {
        "AWS_ACCESS_KEY_ID": s3_access_key,
        "AWS_SECRET_ACCESS_KEY": s3_secret_key,
        "AWS_REGION": S3_REGION,
    }
    return argv, env


class TusdPart(Part):
    name: ClassVar[str] = "tusd"
    requires: ClassVar[tuple[str, ...]] = ("minio", "upload")
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
        argv, env = tusd_command(
            self.binary(ctx),
            host=LOOPBACK,
            port=TUSD_PORT,
            s3_endpoint=MINIO_ENDPOINT,
            s3_access_key=ctx.credentials.minio_root_user,
            s3_secret_key=ctx.credentials.minio_root_password,
            hooks_url=ctx.settings.tusd_hooks_url or HOOKS_URL,
        )
        return LaunchSpec(argv=argv, cwd=ctx.paths.part_dir(self.name), env=env)

    def is_ready(self, ctx: StackContext) -> bool:
        # OPTIONS is tus's capability discovery; it answers without touching the store.
        return http_ok(URL, method="OPTIONS")

    def endpoint(self, ctx: StackContext) -> str:
        return URL

    def env(self, ctx: StackContext) -> dict[str, str]:
        return {"TUS_URL": URL}
