"""slidestream_platform.decisions on a SQLite table of the test's own: the cycle every slide
step shares, the writes that go with a decision, and a crash between publishing and recording."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from sqlalchemy import Engine, create_engine, func
from sqlalchemy.orm import registry
from sqlmodel import Field, Session, SQLModel, select

from slidestream_contracts.events import SlideRejectedV1, SlideStatusV1
from slidestream_contracts.states import SlideState, Step
from slidestream_platform.decisions import (
    Decided,
    DecisionColumns,
    DecisionPublisher,
    SqlDecisionRecords,
    decide_once,
    events_to_json,
    input_digest,
)
from tests.support.fakes import FakeVerifier, RecordingPublisher

NAMESPACE = UUID("00000000-0000-4000-8000-000000000001")
TENANT = "lab-a"
DIGEST = "d" * 64


class StepTable(SQLModel, registry=registry()):
    """A slide step's own tables, as a service declares them."""


class StepDecisionRow(DecisionColumns, StepTable, table=True):
    __tablename__ = "step_decisions"

    verdict: str = Field(default="", max_length=16)


class CompanionRow(StepTable, table=True):
    """A row that belongs to the decision's transaction (as deid's audit entry does)."""

    __tablename__ = "step_companions"

    slide_id: UUID = Field(primary_key=True)


@dataclass
class Kit:
    engine: Engine
    records: SqlDecisionRecords[StepDecisionRow]
    publisher: RecordingPublisher
    verifier: FakeVerifier
    decisions: DecisionPublisher

    def count(self, table: type[SQLModel]) -> int:
        with Session(self.engine) as session:
            return int(session.exec(select(func.count()).select_from(table)).one())


@pytest.fixture
def step(tmp_path: Path) -> Iterator[Kit]:
    """A step's decision table on SQLite, a recording publisher, a fake verifier."""
    engine = create_engine(f"sqlite:///{tmp_path / 'step.db'}")
    StepTable.metadata.create_all(engine)
    publisher, verifier = RecordingPublisher(), FakeVerifier()
    yield Kit(
        engine,
        SqlDecisionRecords(engine, StepDecisionRow),
        publisher,
        verifier,
        DecisionPublisher(publisher, verifier, NAMESPACE),
    )
    engine.dispose()


def rejection(slide_id: UUID) -> list[SlideRejectedV1 | SlideStatusV1]:
    return [
        SlideRejectedV1(slide_id=slide_id, tenant=TENANT, step=Step.DEID, reason="r"),
        SlideStatusV1(slide_id=slide_id, tenant=TENANT, state=SlideState.REJECTED, step=Step.DEID),
    ]


def deciding(decided: Decided, calls: list[Decided]) -> Callable[[], Awaitable[Decided]]:
    """The step's work: ``decided``, noting that it ran."""

    async def decide() -> Decided:
        calls.append(decided)
        return decided

    return decide


def test_input_digest_of_one_file_is_its_sha256_and_of_a_series_is_order_free() -> None:
    assert input_digest(["a" * 64]) == "a" * 64
    assert input_digest(["a" * 64, "b" * 64]) == input_digest(["b" * 64, "a" * 64])
    assert input_digest(["a" * 64, "b" * 64]) != input_digest(["a" * 64, "c" * 64])


async def test_a_decision_is_stored_with_its_mark_and_rows_then_announced_once(
    step: Kit,
) -> None:
    slide_id = uuid4()

    def companion(session: Session) -> None:
        session.add(CompanionRow(slide_id=slide_id))

    calls: list[Decided] = []
    decided = Decided(rejection(slide_id), {"verdict": "rejected"}, record_with=companion)
    for _ in range(2):  # the second is a redelivery
        await decide_once(
            step.decisions,
            step.records,
            slide_id=slide_id,
            tenant=TENANT,
            input_digest=DIGEST,
            decide=deciding(decided, calls),
        )

    assert len(calls) == 1 and step.count(CompanionRow) == 1
    row = step.records.find(slide_id, DIGEST)
    assert row is not None and row.published_at is not None and row.verdict == "rejected"
    assert (row.mark_partition, row.mark_offset) == (2, 100)
    assert [(type(e), i) for e, i in step.publisher.sent] == [
        (SlideRejectedV1, step.decisions.event_id(slide_id, DIGEST, "slides.rejected.v1")),
        (SlideStatusV1, step.decisions.event_id(slide_id, DIGEST, "slides.status.v1")),
    ]
    assert step.verifier.checked == []  # a fresh decision has nothing to look for


async def test_a_crash_between_publishing_and_recording_publishes_the_first_event_once(
    step: Kit,
) -> None:
    slide_id = uuid4()
    events = rejection(slide_id)
    first_id = step.decisions.event_id(slide_id, DIGEST, events[0].TOPIC)
    # The crashed attempt: decision recorded, first event in the log, "published" not recorded.
    mark = await step.decisions.mark(events)
    step.records.insert_if_absent(
        StepDecisionRow(
            slide_id=slide_id,
            input_sha256=DIGEST,
            tenant=TENANT,
            events_json=events_to_json(events),
            mark_partition=mark.partition,
            mark_offset=mark.from_offset,
        )
    )
    step.verifier.already_out.add(first_id)

    calls: list[Decided] = []
    announced = await decide_once(
        step.decisions,
        step.records,
        slide_id=slide_id,
        tenant=TENANT,
        input_digest=DIGEST,
        decide=deciding(Decided(events), calls),
    )

    assert announced and calls == []
    assert step.verifier.checked == [first_id]
    assert [type(e) for e, _ in step.publisher.sent] == [SlideStatusV1]
    row = step.records.find(slide_id, DIGEST)
    assert row is not None and row.published_at is not None


def test_a_unique_race_on_a_row_written_with_the_decision_is_retried(step: Kit) -> None:
    slide_id = uuid4()
    with Session(step.engine) as session:  # another replica's row, committed meanwhile
        session.add(CompanionRow(slide_id=slide_id))
        session.commit()
    attempts: list[int] = []

    def companion_if_absent(session: Session) -> None:
        # The first attempt checked before the other replica committed, as a race would.
        attempts.append(1)
        if len(attempts) == 1 or session.get(CompanionRow, slide_id) is None:
            session.add(CompanionRow(slide_id=slide_id))

    row, fresh = step.records.insert_if_absent(
        StepDecisionRow(
            slide_id=slide_id,
            input_sha256=DIGEST,
            tenant=TENANT,
            events_json="[]",
            mark_partition=0,
            mark_offset=0,
        ),
        companion_if_absent,
    )

    assert fresh and len(attempts) == 2
    assert step.count(StepDecisionRow) == 1 and step.count(CompanionRow) == 1
    again, fresh = step.records.insert_if_absent(row.model_copy(), companion_if_absent)
    assert not fresh and again.slide_id == slide_id and len(attempts) == 2
