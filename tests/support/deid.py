"""Support for the deid tests: a private deid process (own consumer group, short retention) on the
shared stack's Kafka, MinIO and PostgreSQL, a publisher of uploaded events, and a collector of
everything deid publishes."""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from uuid import UUID, uuid4

from aiokafka.partitioner import DefaultPartitioner
from sqlalchemy import Engine

from slidestream_contracts.events import ObjectRef, SlideFormat, SlideUploadedV1
from slidestream_contracts.topics import Topic
from slidestream_deid.adapters.repository import SqlDeidRecords
from slidestream_deid.adapters.vault_cipher import AesGcmVaultCipher
from slidestream_deid.domain.keys import VaultKeys
from slidestream_platform.broker import ServiceBus
from slidestream_platform.objectstore.minio_store import MinioObjectStore
from tests.support import service_process
from tests.support.stack import Collector

READY_TIMEOUT_S = 90.0
QUARANTINE = "quarantine"
DEIDENTIFIED = "deidentified"
OUTPUT_TOPICS = (
    Topic.SLIDES_DEIDENTIFIED.value,
    Topic.SLIDES_REJECTED.value,
    Topic.SLIDES_STATUS.value,
    "dlq.deid.v1",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class DeidProcess:
    stack_env: dict[str, str]
    workdir: Path
    key_file: Path
    vault_key_file: Path
    retention_s: float
    port: int = field(default_factory=free_port)
    group: str = field(default_factory=lambda: f"deid-test-{uuid4().hex[:8]}")
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "deid.log"

    def start(self) -> None:
        env = os.environ.copy()  # noqa: TID251 - building a child process environment
        env.update(
            KAFKA_BOOTSTRAP=self.stack_env["KAFKA_BOOTSTRAP"],
            KAFKA_CONSUMER_GROUP=self.group,
            KAFKA_MAX_ATTEMPTS="2",
            KAFKA_RETRY_BACKOFF_INITIAL_S="0.2",
            S3_ENDPOINT=self.stack_env["S3_ENDPOINT"],
            S3_ACCESS_KEY=self.stack_env["S3_ACCESS_KEY"],
            S3_SECRET_KEY=self.stack_env["S3_SECRET_KEY"],
            DATABASE_URL=self.stack_env["POSTGRES_URL"],
            HTTP_PORT=str(self.port),
            DATA_DIR=str(self.workdir),
            WORK_DIR=str(self.workdir),
            LOG_JSON="true",
            PSEUDONYM_KEY_FILE=str(self.key_file),
            PSEUDONYM_KEY_VERSION="1",
            VAULT_KEY_FILE=str(self.vault_key_file),
            VAULT_KEY_ID="1",
            QUARANTINE_RETENTION_S=str(self.retention_s),
            RETENTION_SWEEP_INTERVAL_S="1",
        )
        self.process = service_process.launch("slidestream_deid.main", env, self.log_path)
        service_process.wait_ready(
            self.process, self.url, self.log_path, name="deid", timeout_s=READY_TIMEOUT_S
        )

    def stop(self) -> None:
        service_process.stop(self.process)

    def logs(self) -> str:
        return service_process.logs(self.log_path)


def slide_id_on_partition(partition: int, partitions: int) -> UUID:
    """A slide id whose events land on ``partition`` (Kafka's murmur2 partitioner of the key)."""
    partitioner = DefaultPartitioner()
    all_partitions = list(range(partitions))
    while True:
        candidate = uuid4()
        key = str(candidate).encode()
        if partitioner(key, all_partitions, all_partitions) == partition:
            return candidate


def partition_of(slide_id: UUID, partitions: int) -> int:
    all_partitions = list(range(partitions))
    return int(DefaultPartitioner()(str(slide_id).encode(), all_partitions, all_partitions))


def put_slide(
    store: MinioObjectStore,
    *,
    tenant: str,
    slide: Path,
    manifest: dict[str, object] | None,
    client_filename: str | None = None,
    slide_id: UUID | None = None,
) -> SlideUploadedV1:
    """What upload leaves behind for one slide: the original, its manifest row, tusd's info."""
    slide_id = slide_id or uuid4()
    prefix = f"{tenant}/{slide_id}"
    original = store.put_file(QUARANTINE, f"{prefix}/original", slide)
    if client_filename is not None:
        info = json.dumps({"MetaData": {"filename": client_filename}}).encode()
        store.put_stream(QUARANTINE, f"{prefix}/original.info", io.BytesIO(info), len(info))
    manifest_ref: ObjectRef | None = None
    if manifest is not None:
        body = json.dumps(manifest).encode()
        written = store.put_stream(
            QUARANTINE, f"{prefix}/manifest.json", io.BytesIO(body), len(body)
        )
        manifest_ref = written.to_event_ref()
    return SlideUploadedV1(
        slide_id=slide_id,
        tenant=tenant,
        original=original.to_event_ref(),
        container_format=container_of(slide),
        upload_id=f"test-{slide_id}",
        manifest=manifest_ref,
    )


def container_of(path: Path) -> SlideFormat:
    """What upload's sniffing would have said (deid detects the format itself regardless)."""
    with path.open("rb") as handle:
        head = handle.read(132)
    if head.startswith(b"PK"):
        return SlideFormat.ZIP
    if head[128:132] == b"DICM":
        return SlideFormat.DICOM
    if head[2:4] in (b"+\x00", b"\x00+"):
        return SlideFormat.BIGTIFF
    return SlideFormat.TIFF


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


RETENTION_S = 20.0
"""Short enough to watch originals go, long enough for every check that reads them first."""


@dataclass
class Deployment:
    process: DeidProcess
    collector: Collector
    bus: ServiceBus
    store: MinioObjectStore
    engine: Engine
    tenant: str
    key_file: Path
    vault_key_file: Path
    partitions: int

    def records(self) -> SqlDeidRecords:
        """deid's records on the shared database, with the stack's vault key (id 1)."""
        secret = self.vault_key_file.read_bytes().rstrip(b"\r\n")
        return SqlDeidRecords(self.engine, AesGcmVaultCipher(VaultKeys(1, {1: secret})))
