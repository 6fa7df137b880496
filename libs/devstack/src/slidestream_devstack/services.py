"""slidestream's own services as parts of the local stack: one background process each.

They start after the servers (``SERVICE_PHASE``), with the servers' endpoints from stack.env in
their environment, their own HTTP port, and logs under ``.local/logs/<service>.log``. A service is
ready when its ``/readyz`` answers 200 (Kafka and its own dependencies reachable).
"""

from __future__ import annotations

import sys
from typing import ClassVar

from slidestream_devstack.buckets import MODELS_BUCKET
from slidestream_devstack.part import SERVICE_PHASE, LaunchSpec, Part, StackContext
from slidestream_devstack.ports import (
    CATALOG_PORT,
    CONVERT_PORT,
    DEID_PORT,
    INFERENCE_PORT,
    LOOPBACK,
    QC_PORT,
    TUSD_PORT,
    UPLOAD_HOOKS_PORT,
    UPLOAD_PORT,
)
from slidestream_devstack.readiness import http_ok
from slidestream_devstack.secret_files import (
    deid_pseudonym_key_file,
    deid_vault_key_file,
    embed_token_file,
    inference_api_tokens_file,
    models_token_file,
    tusd_hooks_secret_file,
)

_PASSED_THROUGH = (
    "KAFKA_BOOTSTRAP",
    "S3_ENDPOINT",
    "S3_ACCESS_KEY",
    "S3_SECRET_KEY",
    "S3_REGION",
    "DATABASE_URL",
    "TRITON_GRPC",
    "TRITON_HTTP",
    "MILVUS_URI",
)


class ServicePart(Part):
    """A slidestream service run as ``python -m <module>`` from the workspace environment."""

    module: ClassVar[str]
    port: ClassVar[int]
    api_variable: ClassVar[str]
    phase: ClassVar[int] = SERVICE_PHASE
    ready_timeout_s: ClassVar[float] = 90.0

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def extra_env(self, ctx: StackContext) -> dict[str, str]:
        return {}

    def launch_spec(self, ctx: StackContext) -> LaunchSpec:
        env = {key: ctx.peer_env[key] for key in _PASSED_THROUGH if key in ctx.peer_env}
        env.update(
            HTTP_HOST=LOOPBACK,
            HTTP_PORT=str(self.port),
            DATA_DIR=str(ctx.paths.data),
            LOG_JSON="true",
            **self.extra_env(ctx),
        )
        return LaunchSpec(argv=[sys.executable, "-m", self.module], cwd=ctx.paths.local, env=env)

    def is_ready(self, ctx: StackContext) -> bool:
        return http_ok(f"{self.url}/readyz")

    def endpoint(self, ctx: StackContext) -> str:
        return self.url

    def env(self, ctx: StackContext) -> dict[str, str]:
        return {self.api_variable: self.url}


class UploadServicePart(ServicePart):
    name: ClassVar[str] = "upload"
    module: ClassVar[str] = "slidestream_upload.main"
    port: ClassVar[int] = UPLOAD_PORT
    ports: ClassVar[tuple[int, ...]] = (UPLOAD_PORT, UPLOAD_HOOKS_PORT)
    api_variable: ClassVar[str] = "UPLOAD_API"
    requires: ClassVar[tuple[str, ...]] = ("kafka", "minio", "postgres")

    def prepare(self, ctx: StackContext) -> None:
        tusd_hooks_secret_file(ctx.paths.local)

    def extra_env(self, ctx: StackContext) -> dict[str, str]:
        # tusd's hooks on their own port, with the secret tusd's hook URL carries (its path only).
        return {
            "TUS_URL": f"http://{LOOPBACK}:{TUSD_PORT}/files/",
            "HOOKS_PORT": str(UPLOAD_HOOKS_PORT),
            "TUSD_HOOKS_SECRET_FILE": str(tusd_hooks_secret_file(ctx.paths.local)),
        }


class CatalogServicePart(ServicePart):
    name: ClassVar[str] = "catalog"
    module: ClassVar[str] = "slidestream_catalog.main"
    port: ClassVar[int] = CATALOG_PORT
    ports: ClassVar[tuple[int, ...]] = (CATALOG_PORT,)
    api_variable: ClassVar[str] = "CATALOG_API"
    requires: ClassVar[tuple[str, ...]] = ("kafka", "postgres", "minio", "milvus")

    def prepare(self, ctx: StackContext) -> None:
        embed_token_file(ctx.paths.local)

    def extra_env(self, ctx: StackContext) -> dict[str, str]:
        # Similarity by image patch: the inference service embeds it. The token's path only
        # (scope models:embed; the inference service's tokens file holds its hash).
        return {
            "INFERENCE_API_URL": f"http://{LOOPBACK}:{INFERENCE_PORT}",
            "EMBED_TOKEN_FILE": str(embed_token_file(ctx.paths.local)),
            # Partner tokens belong to the upload API; the catalog resolves them there.
            "UPLOAD_API_URL": f"http://{LOOPBACK}:{UPLOAD_PORT}",
        }

    def env(self, ctx: StackContext) -> dict[str, str]:
        # The same API under the name partners' tools use for search (`slidestream search`).
        return {self.api_variable: self.url, "SEARCH_API": self.url}


class DeidServicePart(ServicePart):
    name: ClassVar[str] = "deid"
    module: ClassVar[str] = "slidestream_deid.main"
    port: ClassVar[int] = DEID_PORT
    ports: ClassVar[tuple[int, ...]] = (DEID_PORT,)
    api_variable: ClassVar[str] = "DEID_API"
    requires: ClassVar[tuple[str, ...]] = ("kafka", "minio", "postgres")

    def prepare(self, ctx: StackContext) -> None:
        deid_pseudonym_key_file(ctx.paths.local)
        deid_vault_key_file(ctx.paths.local)

    def extra_env(self, ctx: StackContext) -> dict[str, str]:
        # The paths only: the keys themselves never enter an environment (or stack.env).
        return {
            "PSEUDONYM_KEY_FILE": str(deid_pseudonym_key_file(ctx.paths.local)),
            "PSEUDONYM_KEY_VERSION": "1",
            "VAULT_KEY_FILE": str(deid_vault_key_file(ctx.paths.local)),
            "VAULT_KEY_ID": "1",
        }


class ConvertServicePart(ServicePart):
    name: ClassVar[str] = "convert"
    module: ClassVar[str] = "slidestream_convert.main"
    port: ClassVar[int] = CONVERT_PORT
    ports: ClassVar[tuple[int, ...]] = (CONVERT_PORT,)
    api_variable: ClassVar[str] = "CONVERT_API"
    requires: ClassVar[tuple[str, ...]] = ("kafka", "minio", "postgres")

    def extra_env(self, ctx: StackContext) -> dict[str, str]:
        return {"WORK_DIR": str(ctx.paths.local / "scratch" / "convert")}


class QcServicePart(ServicePart):
    name: ClassVar[str] = "qc"
    module: ClassVar[str] = "slidestream_qc.main"
    port: ClassVar[int] = QC_PORT
    ports: ClassVar[tuple[int, ...]] = (QC_PORT,)
    api_variable: ClassVar[str] = "QC_API"
    requires: ClassVar[tuple[str, ...]] = ("kafka", "minio", "postgres")

    def extra_env(self, ctx: StackContext) -> dict[str, str]:
        return {"WORK_DIR": str(ctx.paths.local / "scratch" / "qc")}


class InferenceServicePart(ServicePart):
    name: ClassVar[str] = "inference"
    module: ClassVar[str] = "slidestream_inference.main"
    port: ClassVar[int] = INFERENCE_PORT
    ports: ClassVar[tuple[int, ...]] = (INFERENCE_PORT,)
    api_variable: ClassVar[str] = "INFERENCE_API"
    requires: ClassVar[tuple[str, ...]] = ("kafka", "minio", "postgres", "triton")

    def prepare(self, ctx: StackContext) -> None:
        inference_api_tokens_file(ctx.paths.local)

    def extra_env(self, ctx: StackContext) -> dict[str, str]:
        return {
            "WORK_DIR": str(ctx.paths.local / "scratch" / "inference"),
            "MODELS_BUCKET": MODELS_BUCKET,
            # Hashes only; the token itself is in the file MODELS_TOKEN_FILE names.
            "API_TOKENS_FILE": str(inference_api_tokens_file(ctx.paths.local)),
        }

    def env(self, ctx: StackContext) -> dict[str, str]:
        # The token's path, never the token: stack.env is read by scripts and shown in logs.
        return {**super().env(ctx), "MODELS_TOKEN_FILE": str(models_token_file(ctx.paths.local))}
