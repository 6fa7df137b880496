"""``POST /v1/slides/{id}/fix``'s use case: a partner supplies what a failed slide lacked.

Steps:

1. (the API) read the facts with the one parser: a wrong unit is refused naming the field;
2. check the slide failed for a reason those facts answer (:mod:`.domain.fixes`);
3. store the fix, once per slide (a second one is refused; a retried request whose publication
   failed publishes the same fix again);
4. publish :class:`SlideFixRequestedV1` with the fix's id as its event id; the producer of the
   failed step's input (deid, for conversion) announces that input again with the facts.
"""

from __future__ import annotations

import asyncio
import json
from typing import Protocol
from uuid import UUID, uuid5

from slidestream_contracts.events import SlideEvent, SlideFactsV1, SlideFixRequestedV1
from slidestream_contracts.lifecycle import SlideRecord
from slidestream_upload.adapters.repository import UploadRepository
from slidestream_upload.adapters.tables import SlideFixRow, UploadRow
from slidestream_upload.domain.admission import Refusal
from slidestream_upload.domain.fixes import FixPlan, plan_fix

FIX_ID_NAMESPACE = UUID("6f1d2a8e-93c4-4b57-8a0e-2c5d7e9b1f34")
"""A slide's fix id: UUIDv5 of its slide id (there is one fix per slide)."""


class FixPublisher(Protocol):
    async def publish(self, event: SlideEvent, *, event_id: UUID | None = None) -> None: ...


class SlideStates(Protocol):
    def get(self, slide_id: UUID) -> SlideRecord | None: ...


async def fix_slide(
    upload: UploadRow,
    facts: SlideFactsV1 | None,
    *,
    uploads: UploadRepository,
    states: SlideStates,
    publisher: FixPublisher,
) -> SlideFixRequestedV1 | Refusal:
    """Steps in the module docstring; ``upload`` is the caller's own slide."""
    record = await asyncio.to_thread(states.get, upload.slide_id)
    plan = plan_fix(record, facts)
    if isinstance(plan, Refusal):
        return plan
    stored = await asyncio.to_thread(uploads.request_fix, _row(upload, plan))
    if stored.published_at is not None:
        return Refusal(409, "already-fixed", "the slide was fixed once already")
    assert upload.verified_sha256 is not None  # it failed after the upload was verified
    event = SlideFixRequestedV1(
        slide_id=upload.slide_id,
        tenant=upload.tenant,
        fix_id=stored.fix_id,
        step=plan.step,
        reason=stored.reason,
        original_sha256=upload.verified_sha256,
        declared=SlideFactsV1.model_validate_json(stored.facts_json),
    )
    await publisher.publish(event, event_id=stored.fix_id)
    await asyncio.to_thread(uploads.mark_fix_published, upload.slide_id)
    return event


def _row(upload: UploadRow, plan: FixPlan) -> SlideFixRow:
    return SlideFixRow(
        slide_id=upload.slide_id,
        fix_id=uuid5(FIX_ID_NAMESPACE, str(upload.slide_id)),
        tenant=upload.tenant,
        step=plan.step.value,
        reason=plan.reason,
        facts_json=json.dumps(plan.facts.model_dump(mode="json", exclude_none=True)),
    )
