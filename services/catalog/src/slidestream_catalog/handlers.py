"""The catalog's pipeline steps: every slide event is projected onto the slide's search record
(the live generation, and the one a reindex is building); a model run also goes to every
:class:`~slidestream_catalog.ports.RunIndexer`.

A malformed event fails to decode before a handler runs, and an event naming another tenant than
its slide's is invalid: both are dead-lettered by the delivery middleware.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from faststream import Context

from slidestream_catalog.ports import RunIndexer, SearchStore
from slidestream_contracts.events import (
    SlideConvertedV1,
    SlideDeidentifiedV1,
    SlideEvent,
    SlideInferredV1,
    SlideQcV1,
    SlideRejectedV1,
    SlideStatusV1,
    SlideUploadedV1,
)
from slidestream_contracts.lifecycle import TenantMismatchError
from slidestream_contracts.topics import Topic
from slidestream_platform.errors import InvalidEventError


def project(store: SearchStore, event: SlideEvent) -> tuple[int, ...]:
    """Project ``event``; the generations written (an event naming another tenant than its
    slide's is invalid: the middleware dead-letters it at once)."""
    try:
        return store.apply(event)
    except TenantMismatchError as error:
        raise InvalidEventError(str(error), reason="tenant-mismatch") from error


async def on_slide_uploaded(
    event: SlideUploadedV1,
    search: SearchStore = Context("search"),  # noqa: B008 - FastStream's injection marker
) -> None:
    project(search, event)


async def on_slide_rejected(
    event: SlideRejectedV1,
    search: SearchStore = Context("search"),  # noqa: B008 - FastStream's injection marker
) -> None:
    project(search, event)


async def on_slide_deidentified(
    event: SlideDeidentifiedV1,
    search: SearchStore = Context("search"),  # noqa: B008 - FastStream's injection marker
) -> None:
    project(search, event)


async def on_slide_converted(
    event: SlideConvertedV1,
    search: SearchStore = Context("search"),  # noqa: B008 - FastStream's injection marker
) -> None:
    project(search, event)


async def on_slide_qc(
    event: SlideQcV1,
    search: SearchStore = Context("search"),  # noqa: B008 - FastStream's injection marker
) -> None:
    project(search, event)


async def on_slide_inferred(
    event: SlideInferredV1,
    search: SearchStore = Context("search"),  # noqa: B008 - FastStream's injection marker
    run_indexers: Sequence[RunIndexer] = Context("run_indexers"),
) -> None:
    for generation in project(search, event):
        for indexer in run_indexers:
            await indexer.index_run(event, generation)


async def on_slide_status(
    event: SlideStatusV1,
    search: SearchStore = Context("search"),  # noqa: B008 - FastStream's injection marker
) -> None:
    project(search, event)


BY_TOPIC: dict[Topic, Callable[..., Awaitable[Any]]] = {
    Topic.SLIDES_UPLOADED: on_slide_uploaded,
    Topic.SLIDES_REJECTED: on_slide_rejected,
    Topic.SLIDES_DEIDENTIFIED: on_slide_deidentified,
    Topic.SLIDES_CONVERTED: on_slide_converted,
    Topic.SLIDES_QC: on_slide_qc,
    Topic.SLIDES_INFERRED: on_slide_inferred,
    Topic.SLIDES_STATUS: on_slide_status,
}
"""The projected topics and their handlers: what the service consumes and a reindex replays."""
