"""Support for the catalog tests: one slide's events at chosen minutes, the search tables' rows of
a generation as plain values, a private database on the shared PostgreSQL, the catalog service
as a real process, and a tenant token from the upload service's admin."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from slidestream_catalog.handlers import BY_TOPIC
from slidestream_contracts.events import (
    ConvertedLevel,
    DeidAuditSummary,
    ObjectRef,
    QcMeasure,
    SlideConvertedV1,
    SlideDeidentifiedV1,
    SlideEvent,
    SlideInferredV1,
    SlideQcV1,
    SlideRejectedV1,
    SlideStatusV1,
    SlideUploadedV1,
)
from slidestream_contracts.quarantine import slide_object_key
from slidestream_contracts.states import SlideState, Step
from slidestream_platform.broker import make_bus
from slidestream_platform.db import DatabaseSettings, make_engine
from slidestream_platform.settings import ServiceSettings
from slidestream_platform.telemetry import make_tracer_provider
from slidestream_upload import admin as upload_admin
from tests.support.stack import commit_group_at_end

READY_TIMEOUT_S = 60.0
STACK_WAIT_S = 90.0
"""How long a test waits for the catalog to project what it published (a shared, busy stack)."""
STACK_ENV_FILE = Path(__file__).resolve().parents[2] / ".local" / "stack.env"
PROJECTED_TOPICS = tuple(str(topic) for topic in BY_TOPIC)
EPOCH = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
SEARCH_TABLES = ("search_slide", "search_measure", "search_score", "search_model_run")
"""The tables keyed by generation, in the order :func:`generation_rows` reads them."""


def at(minute: int) -> datetime:
    return EPOCH + timedelta(minutes=minute)


def ref(key: str, size_bytes: int = 1000, bucket: str = "derived") -> ObjectRef:
    """A reference whose sha256 is that of the key's part below ``<tenant>/<slide_id>/``, so two
    slides' same artefact compare equal but for the slide id in its key."""
    return ObjectRef(
        bucket=bucket,
        key=key,
        sha256=hashlib.sha256(key.split("/", 2)[-1].encode()).hexdigest(),
        size_bytes=size_bytes,
    )


class SlideEvents:
    """The events of one slide of one tenant; each builder takes the minute it happened."""

    def __init__(self, tenant: str, slide_id: UUID | None = None) -> None:
        self.tenant = tenant
        self.slide_id = slide_id or uuid4()

    def _base(self, minute: int) -> dict[str, Any]:
        return {"slide_id": self.slide_id, "tenant": self.tenant, "occurred_at": at(minute)}

    def key(self, artefact: str) -> str:
        """Where the pipeline keeps this slide's ``artefact`` (consumers refuse other keys)."""
        return slide_object_key(self.tenant, self.slide_id, artefact)

    def uploaded(self, minute: int, *, organ: str = "colon", stain: str = "H&E") -> SlideUploadedV1:
        return SlideUploadedV1(
            **self._base(minute),
            original=ref(self.key("original.svs"), 5000, "quarantine"),
            container_format="tiff",
            upload_id=f"upload-{self.slide_id}",
            species="human",
            organ=organ,
            stain=stain,
            project="crc-cohort",
        )

    def rejected(self, minute: int) -> SlideRejectedV1:
        return SlideRejectedV1(
            **self._base(minute), step=Step.DEID, reason="phi-residual", detail="label image"
        )

    def deidentified(self, minute: int, *, vendor: str = "aperio") -> SlideDeidentifiedV1:
        return SlideDeidentifiedV1(
            **self._base(minute),
            artefacts=(ref(self.key("a.svs"), 3000), ref(self.key("b.svs"), 500)),
            format="aperio-svs",
            vendor=vendor,
            width_px=40000,
            height_px=30000,
            level_count=3,
            mpp_x=0.25,
            mpp_y=0.25,
            objective_power=40.0,
            pseudonyms={"case": "case-1a2b", "specimen": "spec-3c4d", "patient": "pat-5e6f"},
            audit=DeidAuditSummary(software_version="1.0", key_version=1),
        )

    def converted(self, minute: int) -> SlideConvertedV1:
        return SlideConvertedV1(
            **self._base(minute),
            dicom=(ref(self.key("level-0.dcm"), 2000), ref(self.key("level-1.dcm"), 700)),
            tiff=ref(self.key("slide.tiff"), 300),
            levels=(
                ConvertedLevel(
                    index=0,
                    width_px=40000,
                    height_px=30000,
                    tile_size_px=256,
                    compression="jpeg",
                    lossless_copy=True,
                ),
                ConvertedLevel(
                    index=1,
                    width_px=10000,
                    height_px=7500,
                    tile_size_px=256,
                    compression="jpeg",
                    lossless_copy=False,
                ),
            ),
        )

    def qc(
        self,
        minute: int,
        *,
        verdict: str = "warn",
        blur: float = 0.12,
        reasons: tuple[str, ...] = ("blurry-region",),
    ) -> SlideQcV1:
        return SlideQcV1(
            **self._base(minute),
            verdict=verdict,
            measures=(
                QcMeasure(name="tissue_fraction", value=0.4, unit="", verdict="pass"),
                QcMeasure(
                    name="blur_fraction", value=blur, unit="", threshold=0.1, verdict=verdict
                ),
            ),
            reasons=reasons,
        )

    def inferred(
        self,
        minute: int,
        *,
        model: str = "tissue-classifier",
        version: str = "1",
        summary: dict[str, float] | None = None,
        embeddings: ObjectRef | None = None,
    ) -> SlideInferredV1:
        return SlideInferredV1(
            **self._base(minute),
            model_name=model,
            model_version=version,
            summary=summary
            if summary is not None
            else {"fraction:tumour": 0.35, "fraction:stroma": 0.5},
            tile_count=1200,
            tile_mpp_um=0.5,
            # By default a classifier's run: no embeddings, so the similarity index has nothing
            # to read (the catalog tests' events name no stored objects).
            embeddings=embeddings,
        )

    def status(self, minute: int, state: SlideState, step: Step, detail: str = "") -> SlideStatusV1:
        return SlideStatusV1(**self._base(minute), state=state, step=step, detail=detail)

    def history(self) -> list[SlideEvent]:
        """A slide's whole pipeline in time order, with its status events."""
        return [
            self.uploaded(0),
            self.status(0, SlideState.UPLOADED, Step.UPLOAD),
            self.deidentified(1),
            self.status(1, SlideState.DEIDENTIFIED, Step.DEID),
            self.converted(2),
            self.status(2, SlideState.CONVERTED, Step.CONVERT),
            self.qc(3),
            self.status(3, SlideState.QC_WARNED, Step.QC, "blurry region"),
            self.inferred(4),
            self.status(4, SlideState.INFERRED, Step.INFERENCE),
        ]


def generation_rows(
    engine: sa.Engine, generation: int, slide_ids: set[UUID] | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Every row of ``generation`` in the search tables, without the generation column, sorted,
    as column → value (restricted to ``slide_ids`` when given: the tables are shared)."""
    rows: dict[str, list[dict[str, Any]]] = {}
    with engine.connect() as connection:
        for table in SEARCH_TABLES:
            result = connection.execute(
                sa.text(f"SELECT * FROM {table} WHERE generation = :g"),
                {"g": generation},
            )
            found = [{k: v for k, v in row._mapping.items() if k != "generation"} for row in result]
            if slide_ids is not None:
                found = [row for row in found if UUID(str(row["slide_id"])) in slide_ids]
            rows[table] = sorted(found, key=lambda row: sorted((k, str(v)) for k, v in row.items()))
    return rows


@contextmanager
def private_postgres_database(postgres_url: str) -> Iterator[str]:
    """A fresh database on the shared PostgreSQL server, dropped afterwards: the catalog's
    migrations run there without touching the stack's own ``catalog`` schema."""
    name = f"catalog_it_{uuid4().hex[:10]}"
    admin = sa.create_engine(
        make_url(postgres_url).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class CatalogProcess:
    """The catalog service as a real process on the shared Kafka, with its own consumer group
    (started at the end of the projected topics: the stack's history is not ours), its own
    database (``database_url``; ``None`` for SQLite under ``workdir``) and its own Milvus
    (``milvus_uri``: generations are numbered per catalog, so two catalogs never share one)."""

    stack_env: dict[str, str]
    workdir: Path
    database_url: str | None
    milvus_uri: str
    port: int = field(default_factory=free_port)
    group: str = field(default_factory=lambda: f"catalog-test-{uuid4().hex[:8]}")
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "catalog.log"

    @property
    def settings_env(self) -> dict[str, str]:
        """What the service and ``slidestream admin reindex`` read (as variables or a file)."""
        env = {
            "KAFKA_BOOTSTRAP": self.stack_env["KAFKA_BOOTSTRAP"],
            "DATA_DIR": str(self.workdir),
            "UPLOAD_API_URL": self.stack_env["UPLOAD_API"],
            # The runs' embeddings are in the stack's object store; the vectors are ours.
            "S3_ENDPOINT": self.stack_env["S3_ENDPOINT"],
            "S3_ACCESS_KEY": self.stack_env["S3_ACCESS_KEY"],
            "S3_SECRET_KEY": self.stack_env["S3_SECRET_KEY"],
            "MILVUS_URI": self.milvus_uri,
        }
        if self.database_url is not None:
            env["DATABASE_URL"] = self.database_url
        return env

    def env_file(self) -> Path:
        path = self.workdir / "catalog.env"
        path.write_text("".join(f"{k}={v}\n" for k, v in self.settings_env.items()))
        return path

    def engine(self) -> sa.Engine:
        return make_engine(
            DatabaseSettings(url=self.database_url, data_dir=self.workdir), "catalog"
        )

    async def start(self) -> None:
        for topic in PROJECTED_TOPICS:
            await commit_group_at_end(self.stack_env["KAFKA_BOOTSTRAP"], self.group, topic)
        self._launch()
        await self.wait_ready()

    def _launch(self) -> None:
        env = os.environ.copy()  # noqa: TID251 - building a child process environment
        env.update(
            self.settings_env,
            KAFKA_CONSUMER_GROUP=self.group,
            HTTP_PORT=str(self.port),
            LOG_JSON="true",
        )
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "slidestream_catalog.main"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    async def wait_ready(self) -> None:
        deadline = asyncio.get_running_loop().time() + READY_TIMEOUT_S
        async with httpx.AsyncClient(base_url=self.base_url) as client:
            while asyncio.get_running_loop().time() < deadline:
                assert self.process is not None and self.process.poll() is None, (
                    "catalog exited during start: " + self.log_path.read_text()[-2000:]
                )
                try:
                    if (await client.get("/readyz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
        raise AssertionError("catalog never became ready")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


async def publish(stack_env: dict[str, str], events: list[SlideEvent]) -> None:
    """Publish ``events`` in order with the platform's publisher (envelope, key = slide id)."""
    bus = make_bus(
        ServiceSettings(service_name="catalog-test", kafka_bootstrap=stack_env["KAFKA_BOOTSTRAP"]),
        step=None,
        tracer_provider=make_tracer_provider("test", otlp_endpoint=None),
    )
    await bus.broker.start()
    try:
        for event in events:
            await bus.publisher.publish(event)
    finally:
        await bus.broker.stop()


async def wait_until(
    predicate: Callable[[], bool], *, what: str, timeout_s: float = READY_TIMEOUT_S
) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def create_tenant(stack_env_file: Path) -> tuple[str, str]:
    """A fresh tenant and its token, through the upload service's admin (which owns tokens)."""
    tenant = f"cat-{uuid4().hex[:10]}"
    result = CliRunner().invoke(
        upload_admin.app,
        ["tenant", "create", tenant, "--json", "--env-file", str(stack_env_file)],
    )
    assert result.exit_code == 0, result.output
    return tenant, str(json.loads(result.stdout.strip().splitlines()[-1])["token"])
