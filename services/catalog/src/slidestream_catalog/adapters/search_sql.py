"""SQL of a cohort query: the conditions, the order and the keyset position, on both engines.

Every statement is scoped to one generation and one tenant before any filter of the caller's
(:func:`scope`); the tenant comes from the caller's token, never from the query.

Free text matches what migration ``0002_search`` indexed: on PostgreSQL
``to_tsvector('simple', text) @@ websearch_to_tsquery('simple', :q)`` (the regconfig is a literal
so the expression is the index's); on SQLite the FTS5 table ``search_slide_fts``, with the caller's
words quoted as FTS5 strings so no FTS5 syntax (``NEAR``, ``*``, column filters) can be injected.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final
from uuid import UUID

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    exists,
    false,
    func,
    literal_column,
    not_,
    or_,
    select,
    text,
)
from sqlalchemy.orm import InstrumentedAttribute

from slidestream_catalog.adapters.search_tables import (
    SearchGenerationRow,
    SearchMeasureRow,
    SearchModelRunRow,
    SearchScoreRow,
    SearchSlideRow,
)
from slidestream_catalog.domain.search_cursor import Cursor
from slidestream_catalog.domain.search_query import (
    FieldRef,
    Filter,
    Op,
    SearchQuery,
    SearchValue,
    SortSpec,
)

SLIDE: Final = SearchSlideRow.__table__  # type: ignore[attr-defined]
MEASURE: Final = SearchMeasureRow.__table__  # type: ignore[attr-defined]
SCORE: Final = SearchScoreRow.__table__  # type: ignore[attr-defined]
MODEL_RUN: Final = SearchModelRunRow.__table__  # type: ignore[attr-defined]
TEXT_CONFIG: Final[ColumnElement[str]] = literal_column("'simple'")
"""PostgreSQL's text search configuration, as a literal: a bound parameter would not match the
expression of the GIN index."""
FTS_MATCH: Final = text(
    "search_slide.rowid IN (SELECT rowid FROM search_slide_fts WHERE search_slide_fts MATCH :fts)"
)


def column(ref: FieldRef) -> Any:
    return SLIDE.c[ref.name]


def scope(generation: int, tenant: str) -> ColumnElement[bool]:
    return and_(SLIDE.c.generation == generation, SLIDE.c.tenant == tenant)


def conditions(
    query: SearchQuery, generation: int, tenant: str, *, postgres: bool
) -> list[ColumnElement[bool]]:
    """The WHERE of ``query``: scope first, then free text, then each filter."""
    where = [scope(generation, tenant)]
    if query.text:
        where.append(full_text(query.text, postgres=postgres))
    where.extend(condition(f, generation) for f in query.filters)
    return where


def full_text(words: str, *, postgres: bool) -> ColumnElement[bool]:
    if postgres:
        document = func.to_tsvector(TEXT_CONFIG, SLIDE.c.text)
        return document.op("@@")(func.websearch_to_tsquery(TEXT_CONFIG, words))
    tokens = fts5_tokens(words)
    if not tokens:
        return false()
    return FTS_MATCH.bindparams(fts=tokens).self_group()  # type: ignore[return-value]


def fts5_tokens(words: str) -> str:
    """The caller's words as FTS5 strings (``"a" "b"``: every word, in any order); a ``"``
    inside a word is doubled, as FTS5 escapes it."""
    return " ".join('"' + word.replace('"', '""') + '"' for word in words.split())


def condition(item: Filter, generation: int) -> ColumnElement[bool]:
    ref = item.field
    if ref.measure is not None:
        return _related(MEASURE, generation, [MEASURE.c.name == ref.measure], MEASURE.c.value, item)
    if ref.model is not None:
        keys = [SCORE.c.model == ref.model, SCORE.c.output == ref.output]
        return _related(SCORE, generation, keys, SCORE.c.value, item)
    if ref.name == "model":
        found = exists().where(
            MODEL_RUN.c.generation == generation,
            MODEL_RUN.c.slide_id == SLIDE.c.slide_id,
            MODEL_RUN.c.model.in_(item.values),
        )
        return not_(found) if item.op is Op.NE else found
    target = column(ref)
    if item.op is Op.NE:
        # "stain != H&E" keeps the slides without a stain: they are not H&E either.
        return or_(target.is_(None), target.not_in(item.values))
    return _compare(target, item.op, item.values)


def _related(
    table: Any, generation: int, keys: list[Any], value: Any, item: Filter
) -> ColumnElement[bool]:
    """A filter on a measure or a score: the slide has a row of that name whose value passes."""
    return exists().where(
        table.c.generation == generation,
        table.c.slide_id == SLIDE.c.slide_id,
        *keys,
        _compare(value, item.op, item.values),
    )


def _compare(target: Any, op: Op, values: tuple[SearchValue, ...]) -> ColumnElement[bool]:
    if op is Op.EQ:
        return target.in_(values) if len(values) > 1 else target == values[0]  # type: ignore[no-any-return]
    if op is Op.NE:
        return target.not_in(values)  # type: ignore[no-any-return]
    value = values[0]
    compared = {
        Op.GT: target > value,
        Op.GE: target >= value,
        Op.LT: target < value,
        Op.LE: target <= value,
    }
    return compared[op]  # type: ignore[no-any-return]


def order_by(sort: SortSpec) -> list[Any]:
    """NULLs last in both directions, then slide id in the sort's direction (total order)."""
    target = column(sort.field)
    if sort.descending:
        return [target.desc().nulls_last(), SLIDE.c.slide_id.desc()]
    return [target.asc().nulls_last(), SLIDE.c.slide_id.asc()]


def after(sort: SortSpec, cursor: Cursor) -> ColumnElement[bool]:
    """Rows strictly after ``cursor`` in :func:`order_by`'s order."""
    target = column(sort.field)
    slide_id: InstrumentedAttribute[UUID] | Any = SLIDE.c.slide_id
    later_id = slide_id < cursor.slide_id if sort.descending else slide_id > cursor.slide_id
    if cursor.value is None:
        return and_(target.is_(None), later_id)
    value: SearchValue | datetime = cursor.value
    later_value = target < value if sort.descending else target > value
    return or_(later_value, and_(target == value, later_id), target.is_(None))


def live_generation() -> Select[Any]:
    """The generation that answers queries (``slidestream admin reindex`` swaps it)."""
    pointer = SearchGenerationRow.__table__  # type: ignore[attr-defined]
    return select(pointer.c.live).where(pointer.c.id == 1)
