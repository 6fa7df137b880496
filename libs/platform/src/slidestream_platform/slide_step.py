"""What every slide step (deid, convert, qc; inference next) wires and does the same way.

A slide step consumes one slide event, does work on the slide's objects in a scratch directory,
and announces its decision once (:func:`slidestream_platform.decisions.decide_once`):

* :class:`SlideStep`: the adapters its ``main.py`` builds from the settings (tracer, bus whose
  failed deliveries are counted in the step's own table, engine, object store, the decision
  publisher of its event-id namespace), its metrics on the registry ``/metrics`` serves, and
  :meth:`SlideStep.app`, the app subscribed to the consumed topic with the storage readiness
  checks and migrations at start;
* :func:`scratch_directory`: one slide's private directory, removed afterwards;
  :func:`require_scratch_space`: the room the work needs there, checked before any download;
* :func:`poison_on`: a library's "this slide can never succeed" errors as the service's
  :class:`~slidestream_platform.errors.PoisonError` (dead letter, ``failed:<step>``).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

from fastapi import APIRouter, FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from slidestream_contracts.states import Step
from slidestream_contracts.topics import Topic
from slidestream_platform.attempts import DeliveryAttemptColumns, SqlDeliveryAttempts
from slidestream_platform.broker import ServiceBus, make_bus
from slidestream_platform.checks import AsyncHook, prepare_storage, storage_checks
from slidestream_platform.db import make_engine
from slidestream_platform.decisions import DecisionColumns, DecisionPublisher, SqlDecisionRecords
from slidestream_platform.delivery import DeadLetterHook
from slidestream_platform.errors import PoisonError, ScratchSpaceError, ScratchTooSmallError
from slidestream_platform.objectstore.minio_store import MinioObjectStore
from slidestream_platform.service import PeriodicJob, service_app
from slidestream_platform.settings import ServiceSettings
from slidestream_platform.telemetry import make_tracer_provider

RowT = TypeVar("RowT", bound=DecisionColumns)
MetricsT = TypeVar("MetricsT")
Handler = Callable[..., Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class SlideStep:
    bus: ServiceBus
    engine: Engine
    store: MinioObjectStore
    decisions: DecisionPublisher

    @classmethod
    def wire(
        cls,
        settings: ServiceSettings,
        *,
        step: Step,
        namespace: UUID,
        attempts_table: type[DeliveryAttemptColumns],
    ) -> SlideStep:
        """The adapters of a slide step; ``namespace`` is that of its deterministic event ids,
        ``attempts_table`` the step's table of delivery attempts."""
        tracer_provider = make_tracer_provider(
            settings.service_name, otlp_endpoint=settings.otel_exporter_otlp_endpoint
        )
        engine = make_engine(settings.database, settings.service_name)
        attempts = SqlDeliveryAttempts(engine, attempts_table, settings.consumer_group)
        bus = make_bus(settings, step=step, tracer_provider=tracer_provider, attempts=attempts)
        return cls(
            bus=bus,
            engine=engine,
            store=MinioObjectStore(settings.object_store),
            decisions=DecisionPublisher.for_bus(bus, namespace),
        )

    def records(self, row_type: type[RowT]) -> SqlDecisionRecords[RowT]:
        """The step's decision table."""
        return SqlDecisionRecords(self.engine, row_type)

    def metrics(self, register: Callable[[CollectorRegistry], MetricsT]) -> MetricsT:
        """The step's own metrics, registered where ``/metrics`` (and FastStream's) are."""
        return register(self.bus.metrics.registry)

    def app(
        self,
        *,
        workflow: object,
        consumes: Topic,
        handler: Handler,
        migrations_dir: Path,
        buckets: Sequence[str],
        periodic_jobs: Sequence[PeriodicJob] = (),
        on_startup: Sequence[AsyncHook] = (),
        also_consumes: Sequence[tuple[Topic, Handler]] = (),
        projects: Sequence[tuple[Topic, Handler]] = (),
        routers: Sequence[APIRouter] = (),
        on_dead_letter: DeadLetterHook | None = None,
    ) -> FastAPI:
        """The service: ``handler`` on ``consumes`` (``workflow`` injected as FastStream's
        ``Context("workflow")``), ready when its database and ``buckets`` answer.

        ``also_consumes``: the step's other topics and their handlers, in the same consumer
        group and under the same delivery policy (a failure there is ``failed:<step>`` too);
        ``projects``: topics the step only records facts from (another step's events): a message
        it cannot process there is dead-lettered without a ``failed:<step>`` status;
        ``routers``: the service's own HTTP API beside ``/healthz``, ``/readyz``, ``/metrics``;
        ``on_startup``: the step's own checks, run after the migrations and before the consumer
        starts (one that raises stops the start: deid's key fingerprints);
        ``on_dead_letter``: runs before any of the step's messages is dead-lettered."""
        self.bus.broker.context.set_global("workflow", workflow)
        if on_dead_letter is not None:
            self.bus.delivery.dead_letter_hooks.append(on_dead_letter)
        for topic, topic_handler in ((consumes, handler), *also_consumes):
            self.bus.subscribe(topic, topic_handler)
        for topic, topic_handler in projects:
            self.bus.subscribe(topic, topic_handler, projection=True)
        service = self.bus.settings.service_name
        return service_app(
            self.bus,
            readiness_checks=storage_checks(self.engine, self.store, buckets),
            routers=routers,
            on_startup=[
                prepare_storage(self.engine, service, migrations_dir, self.store, buckets),
                *on_startup,
            ],
            periodic_jobs=periodic_jobs,
        )


@contextmanager
def scratch_directory(prefix: str, parent: Path | None) -> Iterator[Path]:
    """A directory for one slide's files, removed afterwards, failure included: under ``parent``
    (``WORK_DIR``, where the chart mounts the service's sized scratch volume) when set, else in
    the system's temporary directory."""
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=prefix, dir=parent) as name:
        yield Path(name)


def require_scratch_space(directory: Path, needed_bytes: int, *, what: str) -> None:
    """Raise unless ``directory``'s volume has ``needed_bytes`` free: checked before a download,
    since a volume that fills mid-work fails late, and the chart sizes the scratch volume
    (``WORK_DIR``) well below the largest slides.

    Not enough free space now raises :class:`ScratchSpaceError` (the message waits, ``/readyz``
    reports ``scratch``); more than the whole volume raises :class:`ScratchTooSmallError`
    (retried, then dead-lettered: no wait makes the volume larger)."""
    usage = shutil.disk_usage(directory)
    need = f"{what} needs {_gib(needed_bytes)} of scratch space in {directory}"
    if needed_bytes > usage.total:
        raise ScratchTooSmallError(f"{need}; the whole volume is {_gib(usage.total)}")
    if needed_bytes > usage.free:
        raise ScratchSpaceError(f"{need}; {_gib(usage.free)} of {_gib(usage.total)} are free")


def _gib(size_bytes: int) -> str:
    return f"{size_bytes / 1024**3:.2f} GiB"


@contextmanager
def poison_on(
    errors: type[Exception] | tuple[type[Exception], ...], poison: type[PoisonError]
) -> Iterator[None]:
    """Raise ``poison`` for ``errors``: the dead letter says which error and why, and takes the
    error's own ``reason`` (``corrupt-slide``…) when it has one, else ``poison``'s."""
    try:
        yield
    except errors as error:
        reason = getattr(error, "reason", None)
        raise poison(
            f"{type(error).__name__}: {error}", reason=reason if isinstance(reason, str) else None
        ) from error
