"""The search projection in SQL (PostgreSQL or SQLite): loads a slide's record of one generation,
applies :func:`~slidestream_catalog.domain.search_projection.project`, writes what changed.

One transaction per event. Rows are changed with UPDATE and INSERT, never replaced: SQLite's
full-text triggers (migration ``0002_search``) follow ``search_slide.text`` through UPDATE. The
slide row is read ``FOR UPDATE`` (PostgreSQL), so two consumers of one slide take turns; a
transaction that loses a race (two first events of a new slide, SQLite's busy writer) is run
again from the start.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

from sqlalchemy import Engine, delete
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session, col, select

from slidestream_catalog.adapters.search_tables import (
    SearchGenerationRow,
    SearchMeasureRow,
    SearchModelRunRow,
    SearchScoreRow,
    SearchSlideRow,
)
from slidestream_catalog.domain.search_projection import (
    Measure,
    ModelRun,
    SlideFields,
    SlideSearchRecord,
    project,
)
from slidestream_catalog.ports import Generations
from slidestream_contracts.events import SlideEvent

GENERATION_ROW_ID = 1
MAX_TRANSACTION_ATTEMPTS = 5
"""Runs of one event's transaction that lost a race before the error reaches the consumer."""

SLIDE_COLUMNS = tuple(f.name for f in fields(SlideFields))
GENERATION_TABLES = (SearchSlideRow, SearchMeasureRow, SearchScoreRow, SearchModelRunRow)
T = TypeVar("T")


def _utc(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; every timestamp stored here is UTC.
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _fit(table: type[Any], values: dict[str, Any]) -> dict[str, Any]:
    """``values`` with every text cut to its column's length: events bound few of their strings,
    and PostgreSQL refuses a longer value where SQLite would keep it."""
    columns = table.__table__.columns
    fitted = dict(values)
    for name, value in values.items():
        length = getattr(columns[name].type, "length", None) if name in columns else None
        if isinstance(value, str) and length is not None and len(value) > length:
            fitted[name] = value[:length]
    return fitted


def _aware(values: dict[str, Any]) -> dict[str, Any]:
    return {k: _utc(v) if isinstance(v, datetime) else v for k, v in values.items()}


class SqlSearchStore:
    """The search tables of one engine (see the module docstring)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # -- the live consumer -------------------------------------------------------------------

    def apply(self, event: SlideEvent) -> tuple[int, ...]:
        def work(session: Session) -> tuple[int, ...]:
            pointer = _pointer(session)
            targets = (pointer.live,) + (
                (pointer.building,) if pointer.building is not None else ()
            )
            for generation in targets:
                _apply(session, event, generation)
            return targets

        return self._transaction(work)

    def apply_to(self, event: SlideEvent, generation: int) -> None:
        self._transaction(lambda session: _apply(session, event, generation))

    def slide(self, slide_id: UUID) -> SlideFields | None:
        with Session(self._engine) as session:
            row = session.get(SearchSlideRow, (_pointer(session).live, slide_id))
            return _slide_fields(row) if row is not None else None

    def generations(self) -> Generations:
        with Session(self._engine) as session:
            pointer = _pointer(session)
            return Generations(live=pointer.live, building=pointer.building)

    # -- reindex ------------------------------------------------------------------------------

    def begin_rebuild(self) -> Generations:
        """Point ``building`` at ``live + 1`` after deleting that generation's leftover rows (a
        rebuild that stopped half-way)."""

        def work(session: Session) -> Generations:
            pointer = _pointer(session, lock=True)
            building = pointer.live + 1
            _delete_generation(session, building)
            pointer.building = building
            pointer.started_at = datetime.now(UTC)
            pointer.events_applied = 0
            session.add(pointer)
            return Generations(live=pointer.live, building=building)

        return self._transaction(work)

    def swap(self, building: int, events_applied: int) -> int:
        def work(session: Session) -> int:
            pointer = _pointer(session, lock=True)
            if pointer.building != building:
                raise RuntimeError(
                    f"generation {building} is not being built (building: {pointer.building})"
                )
            old = pointer.live
            pointer.live = building
            pointer.building = None
            pointer.swapped_at = datetime.now(UTC)
            pointer.events_applied = events_applied
            session.add(pointer)
            return old

        return self._transaction(work)

    def drop_generation(self, generation: int) -> None:
        self._transaction(lambda session: _delete_generation(session, generation))

    def _transaction(self, work: Callable[[Session], T]) -> T:
        for attempt in range(1, MAX_TRANSACTION_ATTEMPTS + 1):
            try:
                with Session(self._engine) as session, session.begin():
                    return work(session)
            except (IntegrityError, OperationalError):
                if attempt == MAX_TRANSACTION_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


def _pointer(session: Session, *, lock: bool = False) -> SearchGenerationRow:
    pointer = session.get(SearchGenerationRow, GENERATION_ROW_ID, with_for_update=lock)
    if pointer is None:
        raise RuntimeError("search_generation has no row 1: run the catalog migrations")
    return pointer


def _delete_generation(session: Session, generation: int) -> None:
    for table in GENERATION_TABLES:
        session.execute(delete(table).where(col(table.generation) == generation))


def _slide_fields(row: SearchSlideRow) -> SlideFields:
    return SlideFields(**_aware({name: getattr(row, name) for name in SLIDE_COLUMNS}))


def _load(session: Session, generation: int, slide_id: UUID) -> tuple[Any, ...]:
    row = session.get(SearchSlideRow, (generation, slide_id), with_for_update=True)
    if row is None:
        return None, None
    measures = session.exec(
        select(SearchMeasureRow)
        .where(SearchMeasureRow.generation == generation, SearchMeasureRow.slide_id == slide_id)
        .order_by(col(SearchMeasureRow.name))
    ).all()
    runs = session.exec(
        select(SearchModelRunRow)
        .where(SearchModelRunRow.generation == generation, SearchModelRunRow.slide_id == slide_id)
        .order_by(col(SearchModelRunRow.model))
    ).all()
    scores = session.exec(
        select(SearchScoreRow)
        .where(SearchScoreRow.generation == generation, SearchScoreRow.slide_id == slide_id)
        .order_by(col(SearchScoreRow.model), col(SearchScoreRow.output))
    ).all()
    record = SlideSearchRecord(
        slide=_slide_fields(row),
        measures=tuple(Measure(m.name, m.value, m.unit, m.verdict) for m in measures),
        runs=tuple(_model_run(run, scores) for run in runs),
    )
    return row, record


def _model_run(row: SearchModelRunRow, scores: Any) -> ModelRun:
    inferred_at = _utc(row.inferred_at)
    assert inferred_at is not None
    return ModelRun(
        model=row.model,
        model_version=row.model_version,
        tenant=row.tenant,
        tile_count=row.tile_count,
        tile_mpp_um=row.tile_mpp_um,
        embeddings_json=row.embeddings_json,
        slide_embedding_json=row.slide_embedding_json,
        inferred_at=inferred_at,
        scores=tuple((s.output, s.value) for s in scores if s.model == row.model),
    )


def _apply(session: Session, event: SlideEvent, generation: int) -> None:
    row, record = _load(session, generation, event.slide_id)
    updated = project(record, event)
    if updated is record:
        return
    if row is None:
        row = SearchSlideRow(generation=generation, slide_id=event.slide_id, tenant=event.tenant)
    values = _fit(SearchSlideRow, {name: getattr(updated.slide, name) for name in SLIDE_COLUMNS})
    for name, value in values.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
    session.add(row)
    previous = record.measures if record is not None else ()
    if updated.measures != previous:
        _write_measures(session, generation, updated)
    for run in updated.runs:
        if record is None or record.run(run.model) != run:
            _write_run(session, generation, event.slide_id, run)


def _write_measures(session: Session, generation: int, record: SlideSearchRecord) -> None:
    slide_id = record.slide.slide_id
    session.execute(
        delete(SearchMeasureRow).where(
            col(SearchMeasureRow.generation) == generation,
            col(SearchMeasureRow.slide_id) == slide_id,
        )
    )
    session.add_all(
        SearchMeasureRow(
            **_fit(
                SearchMeasureRow,
                {
                    "generation": generation,
                    "slide_id": slide_id,
                    "name": m.name,
                    "value": m.value,
                    "unit": m.unit,
                    "verdict": m.verdict,
                },
            )
        )
        for m in record.measures
    )


def _write_run(session: Session, generation: int, slide_id: UUID, run: ModelRun) -> None:
    row = session.get(SearchModelRunRow, (generation, slide_id, run.model))
    values: dict[str, Any] = {
        "model_version": run.model_version,
        "tenant": run.tenant,
        "tile_count": run.tile_count,
        "tile_mpp_um": run.tile_mpp_um,
        "embeddings_json": run.embeddings_json,
        "slide_embedding_json": run.slide_embedding_json,
        "inferred_at": run.inferred_at,
    }
    values = _fit(SearchModelRunRow, values)
    if row is None:
        row = SearchModelRunRow(generation=generation, slide_id=slide_id, model=run.model, **values)
    else:
        for name, value in values.items():
            setattr(row, name, value)
    session.add(row)
    # A newer run replaces the model's outputs: labels the new run lacks must not linger.
    session.execute(
        delete(SearchScoreRow).where(
            col(SearchScoreRow.generation) == generation,
            col(SearchScoreRow.slide_id) == slide_id,
            col(SearchScoreRow.model) == run.model,
        )
    )
    session.add_all(
        SearchScoreRow(
            generation=generation,
            slide_id=slide_id,
            model=run.model,
            output=_fit(SearchScoreRow, {"output": name})["output"],
            value=value,
        )
        for name, value in run.scores
    )
