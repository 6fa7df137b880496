"""The deid service's one consumed event: de-identify an uploaded slide (workflow.py)."""

from __future__ import annotations

from faststream import Context

from slidestream_contracts.events import SlideUploadedV1
from slidestream_deid.workflow import DeidWorkflow


async def on_slide_uploaded(
    event: SlideUploadedV1,
    workflow: DeidWorkflow = Context("workflow"),  # noqa: B008 - FastStream's injection marker
) -> None:
    # Raises DeidPoisonError for slides that can never pass (dead letter, failed:deid) and
    # RetryableError/others for transient faults (redelivered); the middleware decides.
    await workflow.on_uploaded(event)
