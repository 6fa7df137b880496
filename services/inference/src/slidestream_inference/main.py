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
from slidestream_inference.adapters.model_cards import StoreModelCards
from slidestream_inference.adapters.route_source import RouteSource, SqlRouteSource
from slidestream_inference.adapters.slide_records import SqlSlideRecords
from slidestream_inference.adapters.tables import InferenceDecisionRow
from slidestream_inference.adapters.tiles import TileReader, WsiTileReader
from slidestream_inference.adapters.triton import GrpcTriton, TritonModels
from slidestream_inference.domain.artefacts import EVENT_ID_NAMESPACE
from slidestream_inference.settings import InferenceSettings
from slidestream_inference.slide_run import InferenceMetrics, SlideRun
from slidestream_inference.workflow import InferenceWorkflow
from slidestream_platform.service import run_service
from slidestream_platform.slide_step import SlideStep

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

RouterFactory = Callable[[SlideStep, InferenceSettings], APIRouter]
"""Builds one HTTP router from the step's adapters (engine, object store, bus) and settings."""
API_ROUTERS: tuple[RouterFactory, ...] = ()
"""The routers the service serves by default (the models API registers its factory here)."""


def create_app(
    settings: InferenceSettings,
    *,
    triton: TritonModels | None = None,
    tiles: TileReader | None = None,
    routes: RouteSource | None = None,
    routers: Sequence[RouterFactory] = API_ROUTERS,
) -> FastAPI:
    step = SlideStep.wire(settings, step=Step.INFERENCE, namespace=EVENT_ID_NAMESPACE)
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
        routes=routes or SqlRouteSource(step.engine),
        cards=StoreModelCards(step.store, settings.models_bucket),
        triton=triton,
        run=run,
        records=step.records(InferenceDecisionRow),
        decisions=step.decisions,
    )
    return step.app(
        workflow=workflow,
        consumes=Topic.SLIDES_QC,
        handler=handlers.on_slide_qc,
        also_consumes=[
            (Topic.SLIDES_UPLOADED, handlers.on_slide_uploaded),
            (Topic.INFERENCE_REQUESTS, handlers.on_inference_requested),
        ],
        migrations_dir=MIGRATIONS_DIR,
        buckets=[settings.converted_bucket, settings.derived_bucket, settings.models_bucket],
        routers=[factory(step, settings) for factory in routers],
    )


def main() -> None:
    run_service(InferenceSettings(), create_app)


if __name__ == "__main__":
    main()
