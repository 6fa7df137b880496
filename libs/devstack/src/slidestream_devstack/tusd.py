"""tusd, the reference tus server: the resumable byte path of uploads, stored in MinIO."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Final
from urllib.parse import quote, urlsplit, urlunsplit

from slidestream_devstack import versions
from slidestream_devstack.buckets import S3_REGION
from slidestream_devstack.builds import go_install
from slidestream_devstack.minio import ENDPOINT as MINIO_ENDPOINT
from slidestream_devstack.part import LaunchSpec, Part, StackContext
from slidestream_devstack.ports import LOOPBACK, TUSD_PORT, UPLOAD_HOOKS_PORT
from slidestream_devstack.readiness import http_ok
from slidestream_devstack.secret_files import read_secret, tusd_hooks_secret_file

BASE_PATH: Final = "/files/"
URL: Final = f"http://{LOOPBACK}:{TUSD_PORT}{BASE_PATH}"
UPLOAD_BUCKET: Final = "quarantine"
HOOKS_URL: Final = f"http://{LOOPBACK}:{UPLOAD_HOOKS_PORT}/hooks/tusd"
"""The upload service's internal hooks listener (not its partner API port)."""
HOOKS_USER: Final = "tusd"
"""The HTTP Basic user of the hooks; the upload service checks only the password (the secret)."""
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


def authenticated_hooks_url(hooks_url: str, secret: str) -> str:
    """``hooks_url`` with the hooks secret as its user info: tusd's HTTP client (Go's net/http)
    sends it as ``Authorization: Basic``, the only credential tusd can put on a hook."""
    parts = urlsplit(hooks_url)
    netloc = f"{HOOKS_USER}:{quote(secret, safe='')}@{parts.netloc.rpartition('@')[2]}"
    return urlunsplit(parts._replace(netloc=netloc))


def tusd_command(
    binary: Path,
    *,
    host: str,
    port: int,
    s3_endpoint: str,
    s3_access_key: str,
    s3_secret_key: str,
    hooks_url: str | None,
    hooks_secret: str | None = None,
) -> tuple[list[str], dict[str, str]]:
    """tusd's command line and environment: S3 store in quarantine, hooks to the upload service
    (authenticated with ``hooks_secret``).

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
        # No hook guards GET on an upload URL: tusd would hand the original (PHI and all) to
        # whoever holds the URL. The pipeline reads originals from the bucket, never from tusd.
        "-disable-download",
    ]
    if hooks_url is not None:
        if hooks_secret is not None:
            hooks_url = authenticated_hooks_url(hooks_url, hooks_secret)
        argv += [
            "-hooks-http",
            hooks_url,
            # tusd prints its hook URL at start; the URL holds the hooks secret.
            "-show-startup-logs=false",
            "-hooks-enabled-events",
            ",".join(HOOK_EVENTS),
            # The partner's headers (bearer token included) reach the hooks in the hook's body,
            # which the hooks authenticate. None is forwarded as a header of the hook request:
            # a forwarded Authorization would replace tusd's own credentials.
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
            hooks_secret=read_secret(tusd_hooks_secret_file(ctx.paths.local)),
        )
        return LaunchSpec(argv=argv, cwd=ctx.paths.part_dir(self.name), env=env)

    def is_ready(self, ctx: StackContext) -> bool:
        # OPTIONS is tus's capability discovery; it answers without touching the store.
        return http_ok(URL, method="OPTIONS")

    def endpoint(self, ctx: StackContext) -> str:
        return URL

    def env(self, ctx: StackContext) -> dict[str, str]:
        return {"TUS_URL": URL}
