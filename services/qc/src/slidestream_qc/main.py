"""Wiring of the qc service: settings → adapters → workflow → app (a slide step, as
:mod:`slidestream_platform.slide_step` wires every one)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from slidestream_contracts.states import Step
from slidestream_contracts.topics import Topic
from slidestream_platform.service import run_service
from slidestream_platform.slide_step import SlideStep
from slidestream_qc import handlers
from slidestream_qc.adapters.runner import QcRunner, WsiQcRunner
from slidestream_qc.adapters.tables import DeliveryAttemptRow, QcDecisionRow
from slidestream_qc.domain.outcome import EVENT_ID_NAMESPACE
from slidestream_qc.settings import QcSettings
from slidestream_qc.workflow import QcMetrics, QcWorkflow

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def create_app(settings: QcSettings, runner: QcRunner | None = None) -> FastAPI:
    step = SlideStep.wire(
        settings, step=Step.QC, namespace=EVENT_ID_NAMESPACE, attempts_table=DeliveryAttemptRow
    )
    workflow = QcWorkflow(
        settings=settings,
        store=step.store,
        records=step.records(QcDecisionRow),
        runner=runner or WsiQcRunner(),
        decisions=step.decisions,
        metrics=step.metrics(QcMetrics.register),
    )
    return step.app(
        workflow=workflow,
        consumes=Topic.SLIDES_CONVERTED,
        handler=handlers.on_slide_converted,
        migrations_dir=MIGRATIONS_DIR,
        buckets=[settings.converted_bucket, settings.derived_bucket],
    )


def main() -> None:
    run_service(QcSettings(), create_app)


if __name__ == "__main__":
    main()
