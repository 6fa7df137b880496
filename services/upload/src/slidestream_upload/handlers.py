"""The upload service's one consumed event: keep the partner-facing view of slide state."""

from __future__ import annotations

from faststream import Context

from slidestream_contracts.events import SlideStatusV1
from slidestream_platform.projection import SqlSlideStates, status_change
from slidestream_upload.adapters.tables import SlideStateRow


async def on_slide_status(
    event: SlideStatusV1,
    slide_states: SqlSlideStates[SlideStateRow] = Context("slide_states"),  # noqa: B008
) -> None:
    slide_states.record(status_change(event))
