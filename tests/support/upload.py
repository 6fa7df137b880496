"""Support for the upload tests: a private upload deployment (its own tusd and upload service
processes, with short timings) on the shared stack's Kafka and MinIO — real servers throughout."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import numpy as np
import tifffile
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from minio import Minio

from slidestream_devstack.paths import StackPaths, find_repo_root
from slidestream_devstack.secret_files import ensure_secret_file, read_secret
from slidestream_devstack.tusd import tusd_command

READY_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, *, method: str = "GET", timeout_s: float = READY_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.request(method, url, timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout_s} s")


@dataclass
class UploadDeployment:
    stack_env: dict[str, str]
    workdir: Path
    name: str = "upload"
    consumer_group: str = field(default_factory=lambda: f"upload-test-{uuid4().hex[:8]}")
    ttl_s: float = 3600.0
    api_port: int = field(default_factory=free_port)
    hooks_port: int = field(default_factory=free_port)
    tus_port: int = field(default_factory=free_port)
    service: subprocess.Popen[bytes] | None = None
    tusd: subprocess.Popen[bytes] | None = None

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def hooks_url(self) -> str:
        """The internal listener's hook endpoint (tusd's only; it needs the hooks secret)."""
        return f"http://127.0.0.1:{self.hooks_port}/hooks/tusd"

    @property
    def hooks_secret_file(self) -> Path:
        return ensure_secret_file(self.workdir / "tusd-hooks-secret")

    @property
    def tus_url(self) -> str:
        return f"http://127.0.0.1:{self.tus_port}/files/"

    @property
    def service_log(self) -> Path:
        return self.workdir / "upload.log"

    @property
    def tusd_log(self) -> Path:
        return self.workdir / "tusd.log"

    @property
    def env_file(self) -> Path:
        return self.workdir / "upload.env"

    def service_env(self) -> dict[str, str]:
        return {
            "KAFKA_BOOTSTRAP": self.stack_env["KAFKA_BOOTSTRAP"],
            "S3_ENDPOINT": self.stack_env["S3_ENDPOINT"],
            "S3_ACCESS_KEY": self.stack_env["S3_ACCESS_KEY"],
            "S3_SECRET_KEY": self.stack_env["S3_SECRET_KEY"],
            "DATABASE_URL": f"sqlite:///{self.workdir / 'upload.db'}",
            # A fresh group that starts at the end of slides.status.v1: replaying this machine's
            # whole history would take minutes. start_service waits until the group has joined, so
            # no event of this run is published before the consumer is positioned.
            "KAFKA_CONSUMER_GROUP": self.consumer_group,
            "KAFKA_AUTO_OFFSET_RESET": "latest",
            "HTTP_PORT": str(self.api_port),
            "HOOKS_PORT": str(self.hooks_port),
            "TUSD_HOOKS_SECRET_FILE": str(self.hooks_secret_file),
            "TUS_URL": self.tus_url,
            "UPLOAD_TTL_S": str(self.ttl_s),
            "RECONCILE_INTERVAL_S": "1",
            "FINALIZE_LEASE_S": "3",
            "TUSD_INTERNAL_TOKEN": "internal-test-token",
            "DATA_DIR": str(self.workdir),
        }

    def start_service(self) -> None:
        env = os.environ.copy()  # noqa: TID251 - building a child process environment
        env.update(self.service_env())
        self.env_file.write_text("".join(f"{k}={v}\n" for k, v in self.service_env().items()))
        with self.service_log.open("ab") as log:
            self.service = subprocess.Popen(
                [sys.executable, "-m", "slidestream_upload.main"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_http(f"{self.api}/healthz")
        # start_service is called from sync fixtures and from async tests alike: run the admin
        # client's coroutine on a loop of its own, in a worker thread.
        with ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(asyncio.run, self._wait_for_consumer_group()).result()

    async def _wait_for_consumer_group(self) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.stack_env["KAFKA_BOOTSTRAP"])
        await admin.start()
        try:
            deadline = time.monotonic() + READY_TIMEOUT_S
            while time.monotonic() < deadline:
                [response] = await admin.describe_consumer_groups([self.consumer_group])
                # DescribeGroups v2: (error_code, group, state, protocol_type, protocol, members)
                _error, _name, state, _type, _protocol, members = response.groups[0]
                if state == "Stable" and members:
                    await asyncio.sleep(1.0)  # the new member resets its positions to the end
                    return
                await asyncio.sleep(0.3)
        finally:
            await admin.close()
        raise AssertionError(f"consumer group {self.consumer_group} never became stable")

    def start_tusd(self) -> None:
        argv, tusd_env = tusd_command(
            StackPaths(find_repo_root(None)).bin / "tusd",
            host="127.0.0.1",
            port=self.tus_port,
            s3_endpoint=self.stack_env["S3_ENDPOINT"],
            s3_access_key=self.stack_env["S3_ACCESS_KEY"],
            s3_secret_key=self.stack_env["S3_SECRET_KEY"],
            hooks_url=self.hooks_url,
            hooks_secret=read_secret(self.hooks_secret_file),
        )
        env = os.environ.copy()  # noqa: TID251 - building a child process environment
        env.update(tusd_env)
        with self.tusd_log.open("ab") as log:
            self.tusd = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        wait_http(self.tus_url, method="OPTIONS")

    @staticmethod
    def _kill(process: subprocess.Popen[bytes] | None) -> None:
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)

    def kill_service(self) -> None:
        self._kill(self.service)

    def kill_tusd(self) -> None:
        self._kill(self.tusd)

    def stop(self) -> None:
        self.kill_tusd()
        if self.service is not None and self.service.poll() is None:
            self.service.send_signal(signal.SIGTERM)
            try:
                self.service.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._kill(self.service)

    def create_tenant(
        self, name: str | None = None, *, quota_gib: float = 100.0
    ) -> tuple[str, str]:
        tenant = name or f"t-{uuid4().hex[:10]}"
        result = subprocess.run(
            [
                str(Path(sys.executable).parent / "slidestream"),
                "admin",
                "tenant",
                "create",
                tenant,
                "--quota-gib",
                str(quota_gib),
                "--json",
                "--env-file",
                str(self.env_file),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        return tenant, json.loads(result.stdout)["token"]

    def logs(self) -> str:
        return self.service_log.read_text(errors="replace") + self.tusd_log.read_text(
            errors="replace"
        )


async def events_for(
    bootstrap: str, topic: str, slide_id: str, *, settle_s: float = 3.0, timeout_s: float = 60.0
) -> list[dict[str, Any]]:
    """Every record of ``topic`` keyed by ``slide_id``, waiting until at least one arrived and
    then ``settle_s`` more (so a duplicate would be seen)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    found: list[dict[str, Any]] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        settle_until: float | None = None
        while loop.time() < deadline and (settle_until is None or loop.time() < settle_until):
            batches = await consumer.getmany(timeout_ms=300)
            for records in batches.values():
                for record in records:
                    if record.key == slide_id.encode():
                        found.append(json.loads(record.value))
            if found and settle_until is None:
                settle_until = loop.time() + settle_s
    finally:
        await consumer.stop()
    return found


# -- talking to the deployment (tus and the upload API) --------------------------------------------

TUS = {"Tus-Resumable": "1.0.0"}
WAIT_S = 60.0


def tiff_bytes(seed: int = 0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (512, 512, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, pixels, tile=(256, 256), photometric="rgb")
    return buffer.getvalue()


def metadata_header(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


def create(
    deployment: UploadDeployment,
    token: str | None,
    body: bytes,
    *,
    length: int | None = None,
    **meta: str,
) -> httpx.Response:
    headers = {**TUS, "Upload-Length": str(len(body) if length is None else length)}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    meta.setdefault("filename", "slide.tiff")
    meta.setdefault("sha256", hashlib.sha256(body).hexdigest())
    headers["Upload-Metadata"] = metadata_header(**meta)
    return httpx.post(deployment.tus_url, headers=headers, timeout=30)


def api(deployment: UploadDeployment, token: str, path: str) -> httpx.Response:
    return httpx.get(f"{deployment.api}{path}", headers={"Authorization": f"Bearer {token}"})


def wait_state(
    deployment: UploadDeployment, token: str, slide_id: str, states: set[str]
) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = api(deployment, token, f"/v1/uploads/{slide_id}").json()
        if body.get("state") in states:
            return body
        time.sleep(0.3)
    raise AssertionError(f"upload stayed {body.get('state')!r}, wanted one of {states}")


def s3(deployment: UploadDeployment) -> Minio:
    endpoint = deployment.stack_env["S3_ENDPOINT"].split("://", 1)[1]
    return Minio(
        endpoint,
        deployment.stack_env["S3_ACCESS_KEY"],
        deployment.stack_env["S3_SECRET_KEY"],
        secure=False,
    )


def object_exists(deployment: UploadDeployment, key: str) -> bool:
    try:
        s3(deployment).stat_object("quarantine", key)
    except Exception:
        return False
    return True
