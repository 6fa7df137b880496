"""The convert service's one consumed event: convert a de-identified slide (workflow.py)."""

from __future__ import annotations

from faststream import Context
from faststream.kafka.annotations import KafkaMessage

from slidestream_contracts.events import SlideDeidentifiedV1
from slidestream_convert.workflow import ConvertWorkflow


async def on_slide_deidentified(
    event: SlideDeidentifiedV1,
    message: KafkaMessage,
    workflow: ConvertWorkflow = Context("workflow"),  # noqa: B008 - FastStream's injection marker
) -> None:
    # The consumer is handed over so that a long conversion can pause its partitions and keep
    # polling (group membership); ConvertPoisonError → dead letter + failed:convert, anything
    # else → retried by the delivery middleware.
    await workflow.on_deidentified(event, consumer=getattr(message, "consumer", None))
