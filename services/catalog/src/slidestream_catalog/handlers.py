"""The catalog's one pipeline step: project every status event onto the slide's record."""

from __future__ import annotations

from faststream import Context
from slidestream_contracts.events import SlideStatusV1

from slidestream_catalog.adapters.repository import SlideRepository
from slidestream_catalog.domain.lifecycle import StatusChange


async def on_slide_status(
    event: SlideStatusV1,
    slides: SlideRepository = Context("slides"),  # noqa: B008 - FastStream's injection marker
) -> None:
    slides.record(
        StatusChange(
            slide_id=event.slide_id,
            tenant=event.tenant,
            state=event.state,
            step=event.step,
            reason=event.reason,
            detail=event.detail,
            occurred_at=event.occurred_at,
        )
    )
