"""Wiring of the catalog service: settings → adapters → handlers → app. No logic lives here."""

from __future__ import annotations

import tempfile
from pathlib import Path

import httpx
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Gauge
from sqlalchemy import Engine

from slidestream_catalog import api, handlers, search_api, similar_api
from slidestream_catalog.adapters.crops import PyramidCrops
from slidestream_catalog.adapters.embedder import HttpEmbedder
from slidestream_catalog.adapters.embedding_files import StoredEmbeddingFiles
from slidestream_catalog.adapters.repository import DeliveryAttemptRow
from slidestream_catalog.adapters.search_reader import SqlSlideSearch
from slidestream_catalog.adapters.search_store import SqlSearchStore
from slidestream_catalog.adapters.similar_source import SqlSimilarSource
from slidestream_catalog.adapters.vectors import MilvusVectorIndex
from slidestream_catalog.dead_letters import depths
from slidestream_catalog.ports import RunIndexer
from slidestream_catalog.settings import CatalogSettings
from slidestream_catalog.similar_search import SimilarSearch
from slidestream_catalog.tenants import TenantResolver
from slidestream_catalog.vector_indexing import MosaicIndexer
from slidestream_platform.attempts import SqlDeliveryAttempts
from slidestream_platform.broker import make_bus
from slidestream_platform.checks import database_check, prepare_storage
from slidestream_platform.db import make_engine
from slidestream_platform.objectstore import MinioObjectStore
from slidestream_platform.service import PeriodicJob, run_service, service_app
from slidestream_platform.telemetry import make_tracer_provider

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
EMBED_TIMEOUT_S = 30.0


def similar_services(
    settings: CatalogSettings, engine: Engine, client: httpx.AsyncClient
) -> tuple[similar_api.SimilarServices, MosaicIndexer]:
    """The similarity search's adapters, and the indexer the projection hands runs to."""
    store = MinioObjectStore(settings.object_store)
    vectors = MilvusVectorIndex(
        settings.milvus_uri,
        settings.milvus_token,
        index_type=settings.milvus_index_type,
        nprobe=settings.milvus_nprobe,
    )
    files = StoredEmbeddingFiles(store)
    source = SqlSimilarSource(engine)
    work_dir = settings.work_dir or Path(tempfile.gettempdir()) / "slidestream-catalog"
    services = similar_api.SimilarServices(
        search=SimilarSearch(source, vectors, files),
        source=source,
        crops=PyramidCrops(store, settings.converted_bucket, work_dir),
        embedder=HttpEmbedder(settings.inference_api_url, settings.embed_token_file, client),
    )
    return services, MosaicIndexer(files, vectors, mosaic_tiles=settings.mosaic_tiles)


def dead_letter_depth_job(settings: CatalogSettings, registry: CollectorRegistry) -> PeriodicJob:
    """``slidestream_dead_letter_depth{service}``: what each dead-letter topic holds now."""
    gauge = Gauge(
        "slidestream_dead_letter_depth",
        "Dead letters on dlq.<service>.v1 now (slidestream dlq list shows them).",
        ["service"],
        registry=registry,
    )

    async def measure() -> None:
        for service, depth in (await depths(settings.kafka_bootstrap)).items():
            gauge.labels(service=service).set(depth)

    return PeriodicJob("dead-letter-depth", settings.dead_letter_depth_interval_s, measure)


def create_app(settings: CatalogSettings) -> FastAPI:
    tracer_provider = make_tracer_provider(
        settings.service_name, otlp_endpoint=settings.otel_exporter_otlp_endpoint
    )
    engine = make_engine(settings.database, settings.service_name)
    attempts = SqlDeliveryAttempts(engine, DeliveryAttemptRow, settings.consumer_group)
    bus = make_bus(settings, step=None, tracer_provider=tracer_provider, attempts=attempts)
    projection = SqlSearchStore(engine)
    client = httpx.AsyncClient(timeout=EMBED_TIMEOUT_S)
    similar, indexer = similar_services(settings, engine, client)
    run_indexers: list[RunIndexer] = [indexer]

    bus.broker.context.set_global("search", projection)
    bus.broker.context.set_global("run_indexers", run_indexers)
    for topic, handler in handlers.BY_TOPIC.items():
        bus.subscribe(topic, handler)
    app = service_app(
        bus,
        readiness_checks={"database": database_check(engine)},
        routers=[api.router, search_api.router, similar_api.router],
        on_startup=[prepare_storage(engine, settings.service_name, MIGRATIONS_DIR)],
        on_shutdown=[client.aclose],
        periodic_jobs=[dead_letter_depth_job(settings, bus.metrics.registry)],
    )
    for error, handler in search_api.EXCEPTION_HANDLERS.items():
        app.exception_handler(error)(handler)
    app.state.settings = settings
    app.state.projection = projection
    app.state.similar = similar
    app.state.tenants = TenantResolver(settings.upload_api_url, settings.token_cache_s, client)
    app.state.search = SqlSlideSearch(
        engine, statement_timeout_ms=settings.search_statement_timeout_ms
    )
    return app


def main() -> None:
    run_service(CatalogSettings(), create_app)


if __name__ == "__main__":
    main()
