"""``POST /v1/slides/{id}/fix`` (issue 18): a slide that failed for lack of a fact the partner
knows runs its failed step again, once, with that fact; anything else is refused, saying why."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID, uuid4

import httpx
import pytest

from slidestream_contracts.events import SlideFactsV1, SlideFixRequestedV1
from slidestream_contracts.lifecycle import StatusChange
from slidestream_contracts.states import SlideState, Step
from slidestream_platform.projection import SqlSlideStates
from slidestream_upload import main
from slidestream_upload.adapters.repository import UploadRepository
from slidestream_upload.adapters.tables import SlideStateRow, UploadRow, UploadState
from slidestream_upload.settings import UploadSettings
from tests.support.fakes import RecordingPublisher

SHA256 = hashlib.sha256(b"a generic tiff").hexdigest()


@dataclass
class Fixing:
    client: httpx.AsyncClient
    token: str
    uploads: UploadRepository
    states: SqlSlideStates[SlideStateRow]
    publisher: RecordingPublisher

    def slide(self, tenant: str = "acme", *, state: SlideState, reason: str | None) -> UUID:
        slide_id = uuid4()
        self.uploads.add_upload(
            UploadRow(
                slide_id=slide_id,
                tenant=tenant,
                object_key=f"{tenant}/{slide_id}/original",
                filename="plain.tiff",
                declared_size_bytes=100,
                verified_sha256=SHA256,
                state=UploadState.PUBLISHED.value,
            )
        )
        step = Step(state.value.split(":")[1]) if ":" in state.value else Step.CONVERT
        self.states.record(
            StatusChange(slide_id, tenant, state, step, reason, "", datetime.now(UTC))
        )
        return slide_id

    async def fix(self, slide_id: UUID, **facts: object) -> httpx.Response:
        return await self.client.post(
            f"/v1/slides/{slide_id}/fix",
            json=facts,
            headers={"Authorization": f"Bearer {self.token}"},
        )


@pytest.fixture
async def fixing(settings: UploadSettings, uploads: UploadRepository) -> AsyncIterator[Fixing]:
    app = main.create_app(settings)
    publisher = RecordingPublisher()
    app.state.publisher = publisher
    transport = httpx.ASGITransport(app=app)
    token = uploads.issue_token("acme").token
    async with httpx.AsyncClient(transport=transport, base_url="http://upload") as client:
        yield Fixing(client, token, uploads, app.state.slide_states, publisher)


async def test_a_slide_without_spacing_is_fixed_once(fixing: Fixing) -> None:
    slide_id = fixing.slide(state=SlideState.FAILED_CONVERT, reason="missing-pixel-spacing")

    answer = await fixing.fix(slide_id, mpp_um="0.25 µm", scanner="Lab scope 2")

    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert (body["step"], body["reason"]) == ("convert", "missing-pixel-spacing")
    assert body["declared"] == {"mpp_um": 0.25, "scanner": "Lab scope 2"}
    [(event, event_id)] = fixing.publisher.sent
    assert isinstance(event, SlideFixRequestedV1)
    assert (event.slide_id, event.tenant, event.step) == (slide_id, "acme", Step.CONVERT)
    assert event.original_sha256 == SHA256
    assert event.declared == SlideFactsV1(mpp_um=0.25, scanner="Lab scope 2")
    assert event_id == event.fix_id == UUID(body["fix_id"])

    again = await fixing.fix(slide_id, mpp_um="0.5")
    assert (again.status_code, again.json()["reason"]) == (409, "already-fixed")
    assert len(fixing.publisher.sent) == 1


@pytest.mark.parametrize(
    ("state", "reason", "facts", "status", "refusal"),
    [
        (SlideState.CONVERTED, None, {"mpp_um": "0.25"}, 409, "not-failed"),
        (SlideState.FAILED_CONVERT, "corrupt-slide", {"mpp_um": "0.25"}, 409, "not-fixable"),
        (SlideState.FAILED_DEID, "missing-pixel-spacing", {"mpp_um": "0.25"}, 409, "not-fixable"),
        (SlideState.FAILED_CONVERT, "missing-pixel-spacing", {"scanner": "X"}, 422, "missing-fact"),
        (
            SlideState.FAILED_CONVERT,
            "missing-pixel-spacing",
            {"mpp_um": "250 nm"},
            422,
            "invalid-slide-facts",
        ),
    ],
)
async def test_what_a_fact_cannot_fix_is_refused_saying_why(
    fixing: Fixing,
    state: SlideState,
    reason: str | None,
    facts: dict[str, str],
    status: int,
    refusal: str,
) -> None:
    slide_id = fixing.slide(state=state, reason=reason)

    answer = await fixing.fix(slide_id, **facts)

    assert (answer.status_code, answer.json()["reason"]) == (status, refusal), answer.text
    assert answer.json()["message"]
    assert fixing.publisher.sent == []


async def test_another_tenants_slide_is_not_found(fixing: Fixing) -> None:
    fixing.uploads.create_tenant("other", quota_bytes=1 << 30)
    slide_id = fixing.slide(
        "other", state=SlideState.FAILED_CONVERT, reason="missing-pixel-spacing"
    )

    answer = await fixing.fix(slide_id, mpp_um="0.25")

    assert answer.status_code == 404
    assert fixing.publisher.sent == []
