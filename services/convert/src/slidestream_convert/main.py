"""Wiring of the convert service: settings → adapters → workflow → app (a slide step, as
:mod:`slidestream_platform.slide_step` wires every one)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from slidestream_contracts.states import Step
from slidestream_contracts.topics import Topic
from slidestream_convert import handlers
from slidestream_convert.adapters.converter import SlideConverter, WsiConverter
from slidestream_convert.adapters.tables import ConversionRow, DeliveryAttemptRow
from slidestream_convert.domain.inputs import EVENT_ID_NAMESPACE
from slidestream_convert.settings import ConvertSettings
from slidestream_convert.workflow import ConvertMetrics, ConvertWorkflow
from slidestream_platform.service import run_service
from slidestream_platform.slide_step import SlideStep

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def create_app(settings: ConvertSettings, converter: SlideConverter | None = None) -> FastAPI:
    step = SlideStep.wire(
        settings, step=Step.CONVERT, namespace=EVENT_ID_NAMESPACE, attempts_table=DeliveryAttemptRow
    )
    workflow = ConvertWorkflow(
        settings=settings,
        store=step.store,
        records=step.records(ConversionRow),
        converter=converter or WsiConverter(),
        decisions=step.decisions,
        metrics=step.metrics(ConvertMetrics.register),
    )
    return step.app(
        workflow=workflow,
        consumes=Topic.SLIDES_DEIDENTIFIED,
        handler=handlers.on_slide_deidentified,
        migrations_dir=MIGRATIONS_DIR,
        buckets=[settings.deidentified_bucket, settings.converted_bucket],
    )


def main() -> None:
    run_service(ConvertSettings(), create_app)


if __name__ == "__main__":
    main()
