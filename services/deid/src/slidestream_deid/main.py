"""Wiring of the deid service: settings → adapters → workflow → app (a slide step, as
:mod:`slidestream_platform.slide_step` wires every one)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from slidestream_contracts.states import Step
from slidestream_contracts.topics import Topic
from slidestream_deid import handlers
from slidestream_deid.adapters.key_records import SqlKeyRecords
from slidestream_deid.adapters.repository import SqlDeidRecords
from slidestream_deid.adapters.slides import WsiSlideTools
from slidestream_deid.adapters.tables import DeliveryAttemptRow
from slidestream_deid.adapters.vault_cipher import AesGcmVaultCipher
from slidestream_deid.key_guard import KeyGuard
from slidestream_deid.settings import DeidSettings
from slidestream_deid.workflow import EVENT_ID_NAMESPACE, DeidWorkflow
from slidestream_platform.service import PeriodicJob, run_service
from slidestream_platform.slide_step import SlideStep

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def create_app(settings: DeidSettings) -> FastAPI:
    key = settings.pseudonym_key()  # fail at start, not at the first slide
    vault_keys = settings.vault_keys()
    step = SlideStep.wire(
        settings, step=Step.DEID, namespace=EVENT_ID_NAMESPACE, attempts_table=DeliveryAttemptRow
    )
    records = SqlDeidRecords(step.engine, AesGcmVaultCipher(vault_keys))
    guard = KeyGuard(key, vault_keys, SqlKeyRecords(step.engine), records)
    workflow = DeidWorkflow(
        settings=settings,
        store=step.store,
        records=records,
        slides=WsiSlideTools(),
        decisions=step.decisions,
        key=key,
    )
    sweep = PeriodicJob(
        "sweep-quarantine", settings.retention_sweep_interval_s, workflow.sweep_retention
    )
    return step.app(
        workflow=workflow,
        consumes=Topic.SLIDES_UPLOADED,
        handler=handlers.on_slide_uploaded,
        also_consumes=[(Topic.SLIDES_FIXES, handlers.on_fix_requested)],
        migrations_dir=MIGRATIONS_DIR,
        buckets=[settings.quarantine_bucket, settings.deidentified_bucket],
        periodic_jobs=[sweep],
        on_startup=[guard.at_start],  # the key fingerprints, after the migrations
        on_dead_letter=workflow.on_dead_letter,
    )


def main() -> None:
    run_service(DeidSettings(), create_app)


if __name__ == "__main__":
    main()
