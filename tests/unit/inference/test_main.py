"""The service's wiring: one consumer group on its three topics, and the routers it is given."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter

from slidestream_contracts.topics import Topic
from slidestream_inference import main
from slidestream_inference.settings import InferenceSettings
from slidestream_platform.service import PeriodicJob
from slidestream_platform.slide_step import SlideStep
from tests.support.inference import FakeTriton


def test_the_app_consumes_qc_uploads_and_requests_and_serves_extra_routers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[str] = []
    steps: list[SlideStep] = []
    wire = SlideStep.wire

    def wire_and_keep(*args: Any, **kwargs: Any) -> SlideStep:
        steps.append(wire(*args, **kwargs))
        return steps[-1]

    monkeypatch.setattr(SlideStep, "wire", wire_and_keep)

    def models_api(step: SlideStep, settings: InferenceSettings) -> APIRouter:
        made.append(settings.service_name)
        router = APIRouter()

        @router.get("/v1/models")
        async def models() -> dict[str, list[str]]:
            return {"models": []}

        return router

    settings = InferenceSettings(data_dir=tmp_path)
    app = main.create_app(settings, triton=FakeTriton(), routers=[models_api])
    assert "/v1/models" in app.openapi()["paths"] and made == ["inference"]
    [step] = steps
    subscribers = step.bus.broker.subscribers
    assert sorted(t.name for s in subscribers for t in getattr(s, "topics", ())) == sorted(
        [Topic.SLIDES_QC, Topic.SLIDES_UPLOADED, Topic.INFERENCE_REQUESTS]
    )
    assert {getattr(s, "group_id", None) for s in subscribers} <= {"inference", None}


async def test_models_are_loaded_on_the_headless_services_addresses_at_the_grpc_port(
    tmp_path: Path,
) -> None:
    settings = InferenceSettings(
        data_dir=tmp_path,
        triton_grpc="rel-slidestream-triton:8001",
        triton_replicas_dns="localhost",
    )

    endpoints = [r.endpoint for r in await main.triton_replicas(settings).replicas()]

    assert "127.0.0.1:8001" in endpoints


async def test_without_a_replicas_name_the_one_triton_is_every_replica(tmp_path: Path) -> None:
    settings = InferenceSettings(data_dir=tmp_path, triton_grpc="127.0.0.1:18001")

    replicas = await main.triton_replicas(settings).replicas()

    assert [r.endpoint for r in replicas] == ["127.0.0.1:18001"]


def test_the_service_reconciles_the_triton_replicas_on_its_interval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs: list[PeriodicJob] = []
    app = SlideStep.app

    def app_and_keep(self: SlideStep, **kwargs: Any) -> Any:
        jobs.extend(kwargs.get("periodic_jobs", ()))
        return app(self, **kwargs)

    monkeypatch.setattr(SlideStep, "app", app_and_keep)
    settings = InferenceSettings(data_dir=tmp_path, triton_reconcile_interval_s=12.5)

    main.create_app(settings, triton=FakeTriton(), routers=[])

    assert [(job.name, job.interval_s) for job in jobs] == [("reconcile-triton-replicas", 12.5)]
