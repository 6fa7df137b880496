"""NVIDIA Triton Inference Server, the real binary shipped inside the nvidia-pytriton wheel.

The wheel lives in its own virtual environment (it pins numpy<2, which the main environment
outgrew); that environment also holds torch, which Python-backend models import.

Triton reads its model repository from MinIO's ``models`` bucket itself (its S3 file system), with
explicit model control: the inference service loads and unloads models through Triton's
repository API, exactly as in the Helm chart. It starts after MinIO has provisioned the bucket
(``DEPENDENT_SERVER_PHASE``): ``tritonserver`` exits at start-up when the bucket is missing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Final
from urllib.parse import urlsplit

from slidestream_devstack import versions
from slidestream_devstack.buckets import MODELS_BUCKET, S3_REGION
from slidestream_devstack.builds import require_tool, run_build, stamp_matches, write_stamp
from slidestream_devstack.credentials import Credentials
from slidestream_devstack.errors import StackError
from slidestream_devstack.minio import ENDPOINT as MINIO_ENDPOINT
from slidestream_devstack.part import DEPENDENT_SERVER_PHASE, LaunchSpec, Part, StackContext
from slidestream_devstack.ports import (
    LOOPBACK,
    TRITON_GRPC_PORT,
    TRITON_HTTP_PORT,
    TRITON_METRICS_PORT,
)
from slidestream_devstack.process import child_env
from slidestream_devstack.readiness import http_ok

HTTP_URL: Final = f"http://{LOOPBACK}:{TRITON_HTTP_PORT}"
GRPC_ADDRESS: Final = f"{LOOPBACK}:{TRITON_GRPC_PORT}"
STUB_NAME: Final = "triton_python_backend_stub"

_LAYOUT_PROBE: Final = (
    "import json, sysconfig; "
    "print(json.dumps({'libdir': sysconfig.get_config_var('LIBDIR'), "
    "'purelib': sysconfig.get_path('purelib')}))"
)


@dataclass(frozen=True, slots=True)
class TritonLayout:
    """Where things are inside the Triton virtual environment."""

    venv: Path
    python_libdir: Path
    site_packages: Path

    @property
    def bin(self) -> Path:
        return self.venv / "bin"

    @property
    def server_root(self) -> Path:
        return self.site_packages / "pytriton" / "tritonserver"

    @property
    def tritonserver(self) -> Path:
        return self.server_root / "bin" / "tritonserver"

    @property
    def backends(self) -> Path:
        return self.server_root / "backends"

    @property
    def bundled_stub(self) -> Path:
        return (
            self.server_root / "python_backend_stubs" / versions.TRITON_PYTHON_VERSION / STUB_NAME
        )

    @property
    def installed_stub(self) -> Path:
        return self.backends / "python" / STUB_NAME


def s3_model_repository(s3_endpoint: str, bucket: str) -> str:
    """Triton's name for ``bucket`` on an S3 server other than AWS: ``s3://http://host:port/bucket``.

    Triton's S3 file system matches ``s3://(http://|https://|)host:port/bucket``: the port is
    required in this form, and the scheme picks TLS.
    """
    parts = urlsplit(s3_endpoint)
    if parts.scheme not in ("http", "https") or parts.port is None or parts.path not in ("", "/"):
        raise ValueError(f"not an S3 endpoint of the form http(s)://host:port: {s3_endpoint!r}")
    return f"s3://{parts.scheme}://{parts.netloc}/{bucket}"


def s3_credentials_env(credentials: Credentials) -> dict[str, str]:
    """The AWS SDK's variables, through which Triton's S3 file system finds MinIO's account."""
    return {
        "AWS_ACCESS_KEY_ID": credentials.minio_root_user,
        "AWS_SECRET_ACCESS_KEY": credentials.minio_root_password,
        "AWS_DEFAULT_REGION": S3_REGION,
    }


def _pins() -> str:
    return (
        f"python={versions.TRITON_PYTHON_VERSION} nvidia-pytriton=={versions.PYTRITON_VERSION} "
        f"torch=={versions.TORCH_VERSION}"
    )


class TritonPart(Part):
    name: ClassVar[str] = "triton"
    ports: ClassVar[tuple[int, ...]] = (TRITON_HTTP_PORT, TRITON_GRPC_PORT, TRITON_METRICS_PORT)
    ready_timeout_s: ClassVar[float] = 120.0
    requires: ClassVar[tuple[str, ...]] = ("minio",)
    phase: ClassVar[int] = DEPENDENT_SERVER_PHASE

    def venv(self, ctx: StackContext) -> Path:
        return ctx.paths.local / "triton-venv"

    def model_repository(self) -> str:
        return s3_model_repository(MINIO_ENDPOINT, MODELS_BUCKET)

    def layout(self, ctx: StackContext) -> TritonLayout:
        venv = self.venv(ctx)
        python = venv / "bin" / "python"
        if not python.exists():
            raise StackError(f"{python} missing: run `slidestream stack up triton` to create it")
        completed = subprocess.run(
            [str(python), "-c", _LAYOUT_PROBE], capture_output=True, text=True, check=True
        )
        probed = json.loads(completed.stdout)
        return TritonLayout(
            venv=venv, python_libdir=Path(probed["libdir"]), site_packages=Path(probed["purelib"])
        )

    def build(self, ctx: StackContext) -> None:
        venv = self.venv(ctx)
        stamp = venv / ".slidestream-stamp"
        if not stamp_matches(stamp, _pins()):
            uv = require_tool("uv", "install uv (https://docs.astral.sh/uv/)")
            log_path = ctx.paths.logs / "triton-build.log"
            if not (venv / "bin" / "python").exists():
                run_build(
                    [uv, "venv", "--python", versions.TRITON_PYTHON_VERSION, str(venv)],
                    description="Creating Triton's virtual environment",
                    console=ctx.console,
                    log_path=log_path,
                )
            run_build(
                [
                    uv,
                    "pip",
                    "install",
                    "--python",
                    str(venv / "bin" / "python"),
                    f"nvidia-pytriton=={versions.PYTRITON_VERSION}",
                    f"torch=={versions.TORCH_VERSION}",
                ],
                description=(
                    f"Installing nvidia-pytriton {versions.PYTRITON_VERSION} and "
                    f"torch {versions.TORCH_VERSION} (several GB on first run)"
                ),
                console=ctx.console,
                log_path=log_path,
            )
            write_stamp(stamp, _pins())
        layout = self.layout(ctx)
        # Triton looks for the Python backend's stub only next to libtriton_python.so.
        if not layout.installed_stub.exists():
            if not layout.bundled_stub.exists():
                raise StackError(
                    f"no Python backend stub for Python {versions.TRITON_PYTHON_VERSION}"
                )
            shutil.copy2(layout.bundled_stub, layout.installed_stub)

    def prepare(self, ctx: StackContext) -> None:
        # Its working directory only: the models are in the bucket.
        ctx.paths.part_dir(self.name).mkdir(parents=True, exist_ok=True)

    def launch_spec(self, ctx: StackContext) -> LaunchSpec:
        layout = self.layout(ctx)
        inherited = child_env({})
        return LaunchSpec(
            argv=[
                str(layout.tritonserver),
                f"--model-repository={self.model_repository()}",
                f"--backend-directory={layout.backends}",
                "--model-control-mode=explicit",
                # As the chart: ready when the server is; models are the inference service's.
                "--strict-readiness=false",
                f"--http-address={LOOPBACK}",
                f"--http-port={TRITON_HTTP_PORT}",
                f"--grpc-address={LOOPBACK}",
                f"--grpc-port={TRITON_GRPC_PORT}",
                f"--metrics-address={LOOPBACK}",
                f"--metrics-port={TRITON_METRICS_PORT}",
                "--allow-gpu-metrics=false",
            ],
            cwd=ctx.paths.part_dir(self.name),
            env={
                # The stub's embedded interpreter finds its packages through `python3` on PATH,
                # and must load the libpython of this venv's interpreter, not a system one.
                "PATH": _prepend(layout.bin, inherited.get("PATH", "")),
                "LD_LIBRARY_PATH": _prepend(
                    layout.python_libdir, inherited.get("LD_LIBRARY_PATH", "")
                ),
                "VIRTUAL_ENV": str(layout.venv),
                **s3_credentials_env(ctx.credentials),
            },
        )

    def is_ready(self, ctx: StackContext) -> bool:
        return http_ok(f"{HTTP_URL}/v2/health/ready")

    def endpoint(self, ctx: StackContext) -> str:
        return GRPC_ADDRESS

    def env(self, ctx: StackContext) -> dict[str, str]:
        return {
            "TRITON_GRPC": GRPC_ADDRESS,
            "TRITON_HTTP": HTTP_URL,
            "TRITON_MODEL_REPOSITORY": self.model_repository(),
            "MODELS_BUCKET": MODELS_BUCKET,
        }


def _prepend(first: Path, rest: str) -> str:
    return f"{first}:{rest}" if rest else str(first)
