"""The qc service's one consumed event: judge a converted slide (workflow.py)."""

from __future__ import annotations

from faststream import Context

from slidestream_contracts.events import SlideConvertedV1
from slidestream_qc.workflow import QcWorkflow


async def on_slide_converted(
    event: SlideConvertedV1,
    workflow: QcWorkflow = Context("workflow"),  # noqa: B008 - FastStream's injection marker
) -> None:
    # QcPoisonError → dead letter + failed:qc; anything else is retried by the middleware.
    await workflow.on_converted(event)
