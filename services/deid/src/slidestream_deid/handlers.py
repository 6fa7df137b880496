"""The deid service's consumed events: de-identify an uploaded slide; announce a fixed one
again (workflow.py)."""

from __future__ import annotations

from faststream import Context

from slidestream_contracts.events import SlideFixRequestedV1, SlideUploadedV1
from slidestream_deid.workflow import DeidWorkflow


async def on_slide_uploaded(
    event: SlideUploadedV1,
    workflow: DeidWorkflow = Context("workflow"),  # noqa: B008 - FastStream's injection marker
) -> None:
    # Raises DeidPoisonError for slides that can never pass (dead letter, failed:deid) and
    # RetryableError/others for transient faults (redelivered); the middleware decides.
    await workflow.on_uploaded(event)


async def on_fix_requested(
    event: SlideFixRequestedV1,
    workflow: DeidWorkflow = Context("workflow"),  # noqa: B008 - FastStream's injection marker
) -> None:
    await workflow.on_fix_requested(event)
