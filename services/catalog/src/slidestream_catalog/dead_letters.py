"""Dead letters people can act on (issue 19): read every ``dlq.<service>.v1``, say what failed,
why and since when, send an original message back to its topic once its cause is fixed, and
truncate a dead-letter topic once it has been dealt with.

Steps of a replay:

1. read the dead letter (``<service>/<partition>/<offset>``) and decode its original message;
2. look on the original topic, from the moment the message was dead-lettered on, for a record
   that already replays it (header :data:`REPLAY_HEADER`): a replay is sent once, whoever asks
   again (``force`` sends it anyway);
3. publish the original bytes with their key and headers (``traceparent`` included, so the
   replay joins the slide's trace), ``acks=all``. The services decide once per slide and input,
   so a replay of work that did finish publishes nothing new.

Kafka deletes no single record: a purge truncates a whole dead-letter topic up to its current
end (``DeleteRecords``), so filters do not apply to it.
"""

from __future__ import annotations

import base64
import binascii
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete
from pydantic import ValidationError

from slidestream_catalog.adapters.event_log import KafkaEventLog
from slidestream_contracts.events import DeadLetterRecordV1
from slidestream_contracts.topics import SERVICES, dead_letter_topic

REPLAY_HEADER = "slidestream-replay-of"
"""Set on a replayed message: the dead letter it came from (``deid/3/17``)."""
CLIENT_ID = "slidestream-dlq"


class DeadLetterError(ValueError):
    """A dead letter that does not exist or cannot be replayed; the message says which."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    service: str
    partition: int
    offset: int
    record: DeadLetterRecordV1 | None
    """``None`` when the dead-letter record itself does not decode (``problem`` says why)."""
    problem: str = ""

    @property
    def id(self) -> str:
        return f"{self.service}/{self.partition}/{self.offset}"

    @property
    def topic(self) -> str:
        return dead_letter_topic(self.service)

    def summary(self) -> dict[str, Any]:
        """One line of ``dlq list --json``."""
        record = self.record
        return {
            "id": self.id,
            "service": self.service,
            "slide_id": str(record.slide_id) if record and record.slide_id else None,
            "reason": record.error_reason if record else "undecodable-dead-letter",
            "message": record.error_message if record else self.problem,
            "original_topic": record.original_topic if record else None,
            "attempts": record.attempts if record else None,
            "failed_at": record.failed_at.isoformat() if record else None,
            "trace_id": record.trace_id if record else "",
        }


def parse_id(letter_id: str) -> tuple[str, int, int]:
    service, _, rest = letter_id.partition("/")
    partition, _, offset = rest.partition("/")
    if service not in SERVICES or not partition.isdigit() or not offset.isdigit():
        raise DeadLetterError(
            f"{letter_id!r} is not a dead letter id: <service>/<partition>/<offset>, as "
            "`slidestream dlq list` prints them"
        )
    return service, int(partition), int(offset)


async def read_dead_letters(bootstrap: str, services: Iterable[str] = SERVICES) -> list[DeadLetter]:
    """Every dead letter now on the given services' topics, oldest offset first."""
    by_topic = {dead_letter_topic(service): service for service in services}
    letters: list[DeadLetter] = []
    async with KafkaEventLog(bootstrap, by_topic, client_id=CLIENT_ID) as log:
        start, end = await log.earliest(), await log.latest()
        async for raw in log.records(start, end):
            letters.append(_letter(by_topic[raw.topic], raw.partition, raw.offset, raw.value))
    return letters


def _letter(service: str, partition: int, offset: int, value: bytes | None) -> DeadLetter:
    try:
        record = DeadLetterRecordV1.model_validate_json(value or b"")
    except ValidationError as error:
        return DeadLetter(service, partition, offset, None, str(error)[:500])
    return DeadLetter(service, partition, offset, record)


def select(
    letters: Sequence[DeadLetter],
    *,
    reason: str | None = None,
    slide_id: str | None = None,
    ids: Sequence[str] = (),
) -> list[DeadLetter]:
    """The letters matching every filter given (``ids``: exactly those)."""
    wanted = set(ids)
    chosen = []
    for letter in letters:
        summary = letter.summary()
        if wanted and letter.id not in wanted:
            continue
        if reason is not None and summary["reason"] != reason:
            continue
        if slide_id is not None and summary["slide_id"] != slide_id:
            continue
        chosen.append(letter)
    missing = wanted - {letter.id for letter in chosen}
    if missing:
        raise DeadLetterError(f"no such dead letter: {', '.join(sorted(missing))}")
    return chosen


@dataclass(frozen=True, slots=True)
class ReasonGroup:
    service: str
    reason: str
    count: int
    since: datetime | None
    latest: datetime | None


def by_reason(letters: Sequence[DeadLetter]) -> list[ReasonGroup]:
    """How many dead letters each service holds per reason, and since when."""
    counts = Counter((letter.service, letter.summary()["reason"]) for letter in letters)
    groups = []
    for (service, reason), count in sorted(counts.items()):
        times = [
            letter.record.failed_at
            for letter in letters
            if letter.record and letter.service == service and letter.record.error_reason == reason
        ]
        groups.append(
            ReasonGroup(service, reason, count, min(times, default=None), max(times, default=None))
        )
    return groups


def original_message(letter: DeadLetter) -> tuple[bytes, bytes | None, list[tuple[str, bytes]]]:
    """The original value, key and headers to publish again, the replay header added."""
    record = letter.record
    if record is None:
        raise DeadLetterError(f"{letter.id} does not decode: it holds no original to replay")
    try:
        value = base64.b64decode(record.payload_base64, validate=True)
    except (binascii.Error, ValueError) as error:
        raise DeadLetterError(f"{letter.id}: its payload is not base64") from error
    key = record.original_key.encode() if record.original_key is not None else None
    headers = [(k, v.encode()) for k, v in record.original_headers.items() if k != REPLAY_HEADER]
    return value, key, [*headers, (REPLAY_HEADER, letter.id.encode())]


@dataclass(frozen=True, slots=True)
class Replayed:
    letter: DeadLetter
    sent: bool
    """False: an earlier replay was found (``where``) and nothing was sent."""
    where: str


async def replay(
    bootstrap: str, letters: Sequence[DeadLetter], *, force: bool = False
) -> list[Replayed]:
    """Send each letter's original message back to its topic, once (see the module docstring)."""
    outcomes: list[Replayed] = []
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, client_id=CLIENT_ID
    )
    await producer.start()
    try:
        for letter in letters:
            value, key, headers = original_message(letter)
            assert letter.record is not None  # original_message refused the undecodable
            topic = letter.record.original_topic
            earlier = None if force else await _earlier_replay(bootstrap, letter)
            if earlier is not None:
                outcomes.append(Replayed(letter, False, earlier))
                continue
            sent = await producer.send_and_wait(topic, value, key=key, headers=headers)
            outcomes.append(Replayed(letter, True, f"{topic}/{sent.partition}/{sent.offset}"))
    finally:
        await producer.stop()
    return outcomes


async def _earlier_replay(bootstrap: str, letter: DeadLetter) -> str | None:
    """Where a replay of ``letter`` already is on its original topic, if one was sent."""
    assert letter.record is not None
    since_ms = int(letter.record.failed_at.timestamp() * 1000)
    marker = letter.id.encode()
    async with KafkaEventLog(bootstrap, [letter.record.original_topic], client_id=CLIENT_ID) as log:
        start, end = await log.since(since_ms), await log.latest()
        async for raw in log.records(start, end):
            if (REPLAY_HEADER, marker) in list(raw.headers or ()):
                return f"{raw.topic}/{raw.partition}/{raw.offset}"
    return None


async def depths(bootstrap: str) -> dict[str, int]:
    """Dead letters each service's topic holds now (end offsets less the earliest ones)."""
    by_topic = {dead_letter_topic(service): service for service in SERVICES}
    async with KafkaEventLog(bootstrap, by_topic, client_id=CLIENT_ID) as log:
        start, end = await log.earliest(), await log.latest()
    found = dict.fromkeys(SERVICES, 0)
    for (topic, partition), offset in end.items():
        found[by_topic[topic]] += offset - start.get((topic, partition), 0)
    return found


async def purge(bootstrap: str, service: str) -> int:
    """Truncate ``dlq.<service>.v1`` up to its end; the number of dead letters deleted."""
    topic = dead_letter_topic(service)
    async with KafkaEventLog(bootstrap, [topic], client_id=CLIENT_ID) as log:
        start, end = await log.earliest(), await log.latest()
    doomed = {
        TopicPartition(name, partition): RecordsToDelete(before_offset=offset)
        for (name, partition), offset in end.items()
        if offset > start.get((name, partition), 0)
    }
    if not doomed:
        return 0
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id=CLIENT_ID)
    await admin.start()
    try:
        await admin.delete_records(doomed)
    finally:
        await admin.close()
    return sum(end[key] - start.get(key, 0) for key in end)
