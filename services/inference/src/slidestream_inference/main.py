"""Wiring of the inference service: settings → adapters → workflow → app (a slide step, as
:mod:`slidestream_platform.slide_step` wires every one, fed by three topics), plus the HTTP
routers the service serves beside its health endpoints (the models API)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from fastapi import APIRouter, FastAPI

from slidestream_contracts.states import Step
from slidestream_contracts.topics import Topic
from slidestream_inference import handlers
from slidestream_inference.adapters.model_bucket import ModelBucket
from slidestream_inference.adapters.model_cards import StoreModelCards
from slidestream_inference.adapters.route_source import RouteSource
from slidestream_inference.adapters.routes import SqlBackfills, SqlModelLoads, SqlRoutes
from slidestream_inference.adapters.slide_catalogue import SqlSlideCatalogue
from slidestream_inference.adapters.slide_records import SqlSlideRecords
from slidestream_inference.adapters.tables import DeliveryAttemptRow, InferenceDecisionRow
from slidestream_inference.adapters.tiles import TileReader, WsiTileReader
from slidestream_inference.adapters.tokens import TokenFile
from slidestream_inference.adapters.triton import GrpcTriton, TritonModels
from slidestream_inference.adapters.triton_replicas import (
    DnsTritonReplicas,
    FixedTritonReplicas,
    Replica,
    TritonReplicas,
    split_endpoint,
)
from slidestream_inference.adapters.triton_repository import GrpcTritonRepository
from slidestream_inference.api import embed_api, models_api
from slidestream_inference.domain.artefacts import EVENT_ID_NAMESPACE
from slidestream_inference.model_embedding import PatchEmbedder
from slidestream_inference.models_admin import ModelsAdmin
from slidestream_inference.replica_reconciler import ReconcileMetrics, ReplicaReconciler
from slidestream_inference.settings import InferenceSettings
from slidestream_inference.slide_run import InferenceMetrics, SlideRun
from slidestream_inference.workflow import InferenceWorkflow, ModelRestorer
from slidestream_platform.service import PeriodicJob, run_service
from slidestream_platform.slide_step import SlideStep

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

RouterFactory = Callable[[SlideStep, InferenceSettings], APIRouter]
"""Builds one HTTP router from the step's adapters (engine, object store, bus) and settings."""


def triton_replicas(settings: InferenceSettings) -> TritonReplicas:
    """Every Triton replica: the headless Service's addresses when ``TRITON_REPLICAS_DNS`` is
    set (at ``TRITON_GRPC``'s port), else ``TRITON_GRPC`` alone."""

    def repository(endpoint: str) -> GrpcTritonRepository:
        return GrpcTritonRepository(
            endpoint,
            load_timeout_s=settings.model_load_timeout_s,
            canary_timeout_s=settings.canary_timeout_s,
        )

    if settings.triton_replicas_dns is None:
        endpoint = settings.triton_grpc
        return FixedTritonReplicas(Replica(endpoint, repository(endpoint)))
    _host, port = split_endpoint(settings.triton_grpc)
    return DnsTritonReplicas(settings.triton_replicas_dns, port, repository)


def models_admin(step: SlideStep, settings: InferenceSettings) -> ModelsAdmin:
    """The models API's use cases over the step's adapters."""
    return ModelsAdmin(
        bucket=ModelBucket(step.store, settings.models_bucket),
        triton=triton_replicas(settings),
        routes=SqlRoutes(step.engine),
        backfills=SqlBackfills(step.engine),
        loads=SqlModelLoads(step.engine),
        catalogue=SqlSlideCatalogue(step.engine),
        publisher=step.bus.publisher,
        gpus=settings.triton_gpus,
        max_upload_bytes=settings.max_model_upload_bytes,
    )


def models_router(step: SlideStep, settings: InferenceSettings) -> APIRouter:
    """The models API (push, load with canary, routes, backfill)."""
    return models_api(models_admin(step, settings), TokenFile(settings.api_tokens_file))


def embed_router(step: SlideStep, settings: InferenceSettings) -> APIRouter:
    """Image patches embedded with a loaded model (``models:embed``), through ``TRITON_GRPC``."""
    embedder = PatchEmbedder(
        bucket=ModelBucket(step.store, settings.models_bucket),
        triton=GrpcTriton(settings.triton_grpc, timeout_s=settings.triton_timeout_s),
    )
    return embed_api(embedder, TokenFile(settings.api_tokens_file))


def reconcile_job(step: SlideStep, settings: InferenceSettings) -> PeriodicJob:
    """Every Triton replica made to serve the wanted models, on the service's schedule."""
    reconciler = ReplicaReconciler(
        replicas=triton_replicas(settings),
        loads=SqlModelLoads(step.engine),
        bucket=ModelBucket(step.store, settings.models_bucket),
        metrics=step.metrics(ReconcileMetrics.register),
    )

    async def reconcile() -> None:
        await reconciler.reconcile_once()

    return PeriodicJob("reconcile-triton-replicas", settings.triton_reconcile_interval_s, reconcile)


API_ROUTERS: tuple[RouterFactory, ...] = (models_router, embed_router)
"""The routers the service serves by default."""


def create_app(
    settings: InferenceSettings,
    *,
    triton: TritonModels | None = None,
    tiles: TileReader | None = None,
    routes: RouteSource | None = None,
    restorer: ModelRestorer | None = None,
    routers: Sequence[RouterFactory] = API_ROUTERS,
) -> FastAPI:
    step = SlideStep.wire(
        settings,
        step=Step.INFERENCE,
        namespace=EVENT_ID_NAMESPACE,
        attempts_table=DeliveryAttemptRow,
    )
    triton = triton or GrpcTriton(settings.triton_grpc, timeout_s=settings.triton_timeout_s)
    run = SlideRun(
        settings=settings,
        store=step.store,
        tiles=tiles or WsiTileReader(),
        triton=triton,
        metrics=step.metrics(InferenceMetrics.register),
    )
    workflow = InferenceWorkflow(
        settings=settings,
        slides=SqlSlideRecords(step.engine),
        routes=routes or SqlRoutes(step.engine),
        cards=StoreModelCards(step.store, settings.models_bucket),
        triton=triton,
        run=run,
        records=step.records(InferenceDecisionRow),
        decisions=step.decisions,
        backfills=SqlBackfills(step.engine),
        models=restorer or models_admin(step, settings),
    )
    return step.app(
        workflow=workflow,
        consumes=Topic.SLIDES_QC,
        handler=handlers.on_slide_qc,
        also_consumes=[(Topic.INFERENCE_REQUESTS, handlers.on_inference_requested)],
        # Only the stain and project are recorded from uploads: not inference's own step.
        projects=[(Topic.SLIDES_UPLOADED, handlers.on_slide_uploaded)],
        migrations_dir=MIGRATIONS_DIR,
        buckets=[settings.converted_bucket, settings.derived_bucket, settings.models_bucket],
        routers=[factory(step, settings) for factory in routers],
        periodic_jobs=[reconcile_job(step, settings)],
    )


def main() -> None:
    run_service(InferenceSettings(), create_app)


if __name__ == "__main__":
    main()
