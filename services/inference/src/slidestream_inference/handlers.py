"""The inference service's consumed events (workflow.py): QC results to analyse, uploads for
the stain routes filter on, and explicit requests (backfill)."""

from __future__ import annotations

from faststream import Context
from faststream.kafka.annotations import KafkaMessage

from slidestream_contracts.events import InferenceRequestedV1, SlideQcV1, SlideUploadedV1
from slidestream_inference.workflow import InferenceWorkflow

# The consumer is handed over so that a long run can pause its partitions and keep polling
# (group membership, as convert does); PoisonError → dead letter + failed:inference, anything
# else → retried by the delivery middleware.


async def on_slide_qc(
    event: SlideQcV1,
    message: KafkaMessage,
    workflow: InferenceWorkflow = Context("workflow"),  # noqa: B008 - FastStream's injection marker
) -> None:
    await workflow.on_qc(event, consumer=getattr(message, "consumer", None))


async def on_slide_uploaded(
    event: SlideUploadedV1,
    message: KafkaMessage,
    workflow: InferenceWorkflow = Context("workflow"),  # noqa: B008 - FastStream's injection marker
) -> None:
    await workflow.on_uploaded(event, consumer=getattr(message, "consumer", None))


async def on_inference_requested(
    event: InferenceRequestedV1,
    message: KafkaMessage,
    workflow: InferenceWorkflow = Context("workflow"),  # noqa: B008 - FastStream's injection marker
) -> None:
    await workflow.on_requested(event, consumer=getattr(message, "consumer", None))
