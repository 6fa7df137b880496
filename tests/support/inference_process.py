"""A private inference process on the shared stack's Kafka, MinIO and Triton: this checkout's
code serving its HTTP API on a free port, without disturbing the stack's own inference service.

It consumes as its own group from the latest offsets (no old slide is run again) with its own
SQLite database (no routes, no wanted models: it runs no slide and loads nothing), and reads
its own tokens file."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from uuid import uuid4

from slidestream_contracts.tokens import token_sha256
from tests.support import service_process
from tests.support.deid import free_port

READY_TIMEOUT_S = 90.0
RECONCILE_INTERVAL_S = 3600.0
"""Its replica reconciler has nothing to do (no loads recorded): keep it quiet."""


@dataclass
class InferenceProcess:
    stack_env: dict[str, str]
    workdir: Path
    tokens: dict[str, tuple[str, ...]]
    """Bearer token → scopes, written (as hashes) to the process's ``API_TOKENS_FILE``."""
    port: int = field(default_factory=free_port)
    group: str = field(default_factory=lambda: f"inference-test-{uuid4().hex[:8]}")
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "inference.log"

    def _tokens_file(self) -> Path:
        path = self.workdir / "api-tokens.json"
        entries = [
            {"name": f"test-{index}", "sha256": token_sha256(token), "scopes": list(scopes)}
            for index, (token, scopes) in enumerate(self.tokens.items())
        ]
        path.write_text(json.dumps(entries), encoding="utf-8")
        path.chmod(0o600)
        return path

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = os.environ.copy()  # noqa: TID251 - building a child process environment
        env.pop("DATABASE_URL", None)  # SQLite in DATA_DIR: not the stack's inference tables
        env.update(
            KAFKA_BOOTSTRAP=self.stack_env["KAFKA_BOOTSTRAP"],
            KAFKA_TOPIC_PARTITIONS=self.stack_env.get("KAFKA_TOPIC_PARTITIONS", "12"),
            KAFKA_CONSUMER_GROUP=self.group,
            KAFKA_AUTO_OFFSET_RESET="latest",
            S3_ENDPOINT=self.stack_env["S3_ENDPOINT"],
            S3_ACCESS_KEY=self.stack_env["S3_ACCESS_KEY"],
            S3_SECRET_KEY=self.stack_env["S3_SECRET_KEY"],
            TRITON_GRPC=self.stack_env["TRITON_GRPC"],
            TRITON_HTTP=self.stack_env["TRITON_HTTP"],
            TRITON_RECONCILE_INTERVAL_S=str(RECONCILE_INTERVAL_S),
            MODELS_BUCKET=self.stack_env["MODELS_BUCKET"],
            API_TOKENS_FILE=str(self._tokens_file()),
            HTTP_HOST="127.0.0.1",
            HTTP_PORT=str(self.port),
            DATA_DIR=str(self.workdir / "data"),
            WORK_DIR=str(self.workdir / "scratch"),
            LOG_JSON="true",
        )
        self.process = service_process.launch("slidestream_inference.main", env, self.log_path)
        service_process.wait_ready(
            self.process, self.url, self.log_path, name="inference", timeout_s=READY_TIMEOUT_S
        )

    def stop(self) -> None:
        service_process.stop(self.process)

    def logs(self) -> str:
        return service_process.logs(self.log_path)
