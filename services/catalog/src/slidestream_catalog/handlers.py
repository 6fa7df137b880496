"""The catalog's one pipeline step: project every status event onto the slide's record."""

from __future__ import annotations

from faststream import Context

from slidestream_catalog.adapters.repository import SlideRepository
from slidestream_contracts.events import SlideStatusV1
from slidestream_platform.projection import status_change


async def on_slide_status(
    event: SlideStatusV1,
    slides: SlideRepository = Context("slides"),  # noqa: B008 - FastStream's injection marker
) -> None:
    slides.record(status_change(event))
