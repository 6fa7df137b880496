"""The inference benchmark's service child: ``python -m tests.bench.inference_service ARGS``.

One ``slides.qc.v1`` per line of stdin, each handled by the service's own
``InferenceWorkflow.on_qc`` with the real ``SlideRun``, tile reader, object store (the stack's
MinIO) and ``GrpcTriton`` (the stack's Triton); only the routes (in memory), the tables
(SQLite) and the event bus (events recorded, not sent to Kafka) are local. Prints progress to
stderr, one JSON line of measurements per event to stdout, and the peak RSS at the end.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import numpy as np
import numpy.typing as npt
from prometheus_client import CollectorRegistry
from sqlalchemy import create_engine

from slidestream_contracts.events import SlideEvent, SlideInferredV1, SlideQcV1
from slidestream_inference.adapters.model_cards import StoreModelCards
from slidestream_inference.adapters.route_source import MemoryRouteSource
from slidestream_inference.adapters.routes import SqlBackfills
from slidestream_inference.adapters.slide_records import SqlSlideRecords
from slidestream_inference.adapters.tables import InferenceDecisionRow, metadata
from slidestream_inference.adapters.tiles import LevelTiles, TileRequest, WsiTileReader
from slidestream_inference.adapters.triton import GrpcTriton
from slidestream_inference.domain.artefacts import EVENT_ID_NAMESPACE
from slidestream_inference.domain.routing import MinQc, RouteRule
from slidestream_inference.settings import InferenceSettings
from slidestream_inference.slide_run import InferenceMetrics, SlideRun
from slidestream_inference.workflow import InferenceWorkflow
from slidestream_platform.decisions import DecisionPublisher, SqlDecisionRecords
from slidestream_platform.errors import RetryableError
from slidestream_platform.objectstore.minio_store import MinioObjectStore
from slidestream_wsi.pyramid import PyramidLevel
from tests.support.fakes import FakeVerifier
from tests.support.memory import own_peak_rss_bytes

PROGRESS_EVERY_S = 5.0
EXIT_RETRYABLE = 75
"""The exit status when the run failed as the service retries (Triton restarted, the model
not ready): EX_TEMPFAIL, sysexits(3)."""


class TimedTileReader(WsiTileReader):
    """The service's reader, noting when a run starts reading its level and how much it read."""

    def __init__(self) -> None:
        self.opened_at: list[float] = []
        self.opened: list[LevelTiles] = []

    def open(
        self, level_file: Path, level: PyramidLevel, mask_png: bytes, request: TileRequest
    ) -> LevelTiles:
        self.opened_at.append(time.perf_counter())
        tiles = super().open(level_file, level, mask_png, request)
        self.opened.append(tiles)
        return tiles


@dataclass
class TimedPublisher:
    """Records each event with the time it was handed over (instead of sending it to Kafka)."""

    sent: list[tuple[SlideEvent, float]] = field(default_factory=list)

    async def publish(self, event: SlideEvent, *, event_id: UUID | None = None) -> None:
        self.sent.append((event, time.perf_counter()))


class ProgressTriton(GrpcTriton):
    """The service's Triton client, printing the tiles answered every few seconds."""

    def __init__(self, url: str, *, timeout_s: float) -> None:
        super().__init__(url, timeout_s=timeout_s)
        self.tiles = 0
        self._started = time.perf_counter()
        self._printed = self._started

    async def infer(
        self,
        name: str,
        version: str,
        input_name: str,
        batch: npt.NDArray[np.float32],
        output_names: Sequence[str],
    ) -> Mapping[str, np.ndarray | None]:
        answer = await super().infer(name, version, input_name, batch, output_names)
        self.tiles += len(batch)
        now = time.perf_counter()
        if now - self._printed >= PROGRESS_EVERY_S:
            self._printed = now
            print(f"  service: {self.tiles} tiles answered", file=sys.stderr)
        return answer


class NoRestore:
    """Never reloads a model Triton forgot: the benchmark redoes a measurement instead."""

    async def restore(self, name: str) -> bool:
        return False


@dataclass
class Service:
    flow: InferenceWorkflow
    triton: ProgressTriton
    tiles: TimedTileReader
    publisher: TimedPublisher


def wire(arguments: dict[str, Any]) -> Service:
    """The service's workflow as ``main.create_app`` wires it, but for the bus, the routes
    and the database."""
    workdir = Path(arguments["workdir"])
    workdir.mkdir(parents=True, exist_ok=True)
    settings = InferenceSettings(
        s3_endpoint=arguments["s3_endpoint"],
        s3_access_key=arguments["s3_access_key"],
        s3_secret_key=arguments["s3_secret_key"],
        triton_grpc=arguments["triton_grpc"],
        work_dir=workdir,
        **arguments.get("settings", {}),
    )
    engine = create_engine(f"sqlite:///{workdir / 'inference.db'}")
    metadata.create_all(engine)
    store = MinioObjectStore(settings.object_store)
    triton = ProgressTriton(settings.triton_grpc, timeout_s=settings.triton_timeout_s)
    tiles, publisher = TimedTileReader(), TimedPublisher()
    route = RouteRule(
        arguments["model"], arguments["tenant"], min_qc=MinQc.WARN, version=arguments["version"]
    )
    flow = InferenceWorkflow(
        settings=settings,
        slides=SqlSlideRecords(engine),
        routes=MemoryRouteSource([route]),
        cards=StoreModelCards(store, settings.models_bucket),
        triton=triton,
        run=SlideRun(
            settings=settings,
            store=store,
            tiles=tiles,
            triton=triton,
            metrics=InferenceMetrics.register(CollectorRegistry()),
        ),
        records=SqlDecisionRecords(engine, InferenceDecisionRow),
        decisions=DecisionPublisher(publisher, FakeVerifier(), EVENT_ID_NAMESPACE),
        backfills=SqlBackfills(engine),
        models=NoRestore(),
    )
    return Service(flow, triton, tiles, publisher)


async def run_one(service: Service, event: SlideQcV1) -> dict[str, object]:
    """One ``slides.qc.v1`` handled; its times, tiles, bytes read and CPU time."""
    started, cpu_started = time.perf_counter(), time.process_time()
    await service.flow.on_qc(event)
    message_s = time.perf_counter() - started
    cpu_s = time.process_time() - cpu_started
    published_at = service.publisher.sent[-1][1]
    inferred = [e for e, _ in service.publisher.sent if isinstance(e, SlideInferredV1)]
    if not inferred or inferred[-1].slide_id != event.slide_id:
        raise SystemExit(f"slide {event.slide_id}: no slides.inferred.v1 published")
    tiles = inferred[-1].tile_count
    read_s = published_at - service.tiles.opened_at[-1]
    print(
        f"  service: {tiles} tiles in {read_s:.2f} s ({tiles / read_s:.1f} tiles/s), "
        f"message {message_s:.2f} s, CPU {cpu_s:.2f} s",
        file=sys.stderr,
    )
    return {
        "slide_id": str(event.slide_id),
        "tiles": tiles,
        "message_s": message_s,
        "read_to_published_s": read_s,
        "tiles_per_s": tiles / read_s,
        "bytes_read": service.tiles.opened[-1].bytes_read,
        "cpu_s": cpu_s,
    }


async def serve(arguments: dict[str, Any]) -> None:
    """One QC event per line of stdin, one JSON line of measurements per event on stdout (the
    parent runs its direct client between two), then the process's peak RSS at the end."""
    service = wire(arguments)
    try:
        while line := sys.stdin.readline():
            result = await run_one(service, SlideQcV1.model_validate_json(line))
            print(json.dumps(result), flush=True)
    finally:
        await service.triton.close()
    print(json.dumps({"peak_rss_bytes": own_peak_rss_bytes()}), flush=True)


def main() -> None:
    try:
        asyncio.run(serve(json.loads(sys.argv[1])))
    except RetryableError as error:
        print(f"retryable: {error}", file=sys.stderr)
        raise SystemExit(EXIT_RETRYABLE) from error


if __name__ == "__main__":
    main()
