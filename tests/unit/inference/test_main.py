"""The service's wiring: one consumer group on its three topics, and the routers it is given."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter

from slidestream_contracts.topics import Topic
from slidestream_inference import main
from slidestream_inference.settings import InferenceSettings
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
