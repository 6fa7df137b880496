"""A consumer process that is killed (SIGKILL, as the kernel's OOM killer does) by the slide it
is given, counting its deliveries in a SQLite file: the crash-loop test starts it until that
slide is dead-lettered instead.

``python -m tests.support.crashing_consumer BOOTSTRAP GROUP DB_FILE SLIDE_ID MAX_ATTEMPTS``
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from uuid import UUID

from slidestream_contracts.events import SlideUploadedV1
from slidestream_contracts.states import Step
from slidestream_contracts.topics import Topic
from slidestream_platform.attempts import SqlDeliveryAttempts
from slidestream_platform.broker import make_bus
from slidestream_platform.db import DatabaseSettings, make_engine
from slidestream_platform.settings import ServiceSettings
from slidestream_platform.telemetry import make_tracer_provider
from tests.support.delivery import DeliveryAttemptRow, attempts_metadata

LIFETIME_S = 120.0
"""A run that is not killed ends on its own (the test stops it sooner)."""


async def consume(bootstrap: str, group: str, db_file: str, slide_id: UUID, attempts: int) -> None:
    settings = ServiceSettings(
        service_name="deid",
        kafka_bootstrap=bootstrap,
        kafka_consumer_group=group,
        kafka_max_attempts=attempts,
        log_json=False,
    )
    engine = make_engine(DatabaseSettings(url=f"sqlite:///{db_file}"), "deid")
    attempts_metadata.create_all(engine)
    ledger = SqlDeliveryAttempts(engine, DeliveryAttemptRow, group)
    provider = make_tracer_provider("crashing-consumer", otlp_endpoint=None)
    bus = make_bus(settings, step=Step.DEID, tracer_provider=provider, attempts=ledger)

    async def on_uploaded(body: SlideUploadedV1) -> None:
        if body.slide_id == slide_id:
            os.kill(os.getpid(), signal.SIGKILL)

    bus.subscribe(Topic.SLIDES_UPLOADED, on_uploaded)
    await bus.broker.start()
    try:
        await asyncio.sleep(LIFETIME_S)
    finally:
        await bus.broker.stop()


if __name__ == "__main__":
    bootstrap, group, db_file, slide_id, attempts = sys.argv[1:6]
    asyncio.run(consume(bootstrap, group, db_file, UUID(slide_id), int(attempts)))
