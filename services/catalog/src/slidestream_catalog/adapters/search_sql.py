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

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    and_,
    cast,
    exists,
    false,
    func,
    literal,
    literal_column,
    not_,
    null,
    or_,
    select,
    text,
    tuple_,
    union_all,
)

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
    # Subqueries read aliases, so they stay correlated to the slide alone even when the outer
    # statement joins the same table (the ``model`` facet joins search_model_run).
    if ref.measure is not None:
        measure = MEASURE.alias("filter_measure")
        return _related(measure, generation, [measure.c.name == ref.measure], item)
    if ref.model is not None:
        score = SCORE.alias("filter_score")
        keys = [score.c.model == ref.model, score.c.output == ref.output]
        return _related(score, generation, keys, item)
    if ref.name == "model":
        run = MODEL_RUN.alias("filter_run")
        found = exists().where(
            run.c.generation == generation,
            run.c.slide_id == SLIDE.c.slide_id,
            run.c.model.in_(item.values),
        )
        return not_(found) if item.op is Op.NE else found
    target = column(ref)
    if item.op is Op.NE:
        # "stain != H&E" keeps the slides without a stain: they are not H&E either.
        return or_(target.is_(None), target.not_in(item.values))
    return _compare(target, item.op, item.values)


def _related(table: Any, generation: int, keys: list[Any], item: Filter) -> ColumnElement[bool]:
    """A filter on a measure or a score: the slide has a row of that name whose value passes."""
    return exists().where(
        table.c.generation == generation,
        table.c.slide_id == SLIDE.c.slide_id,
        *keys,
        _compare(table.c.value, item.op, item.values),
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


def order_by(sort: SortSpec, *, postgres: bool, source: Any = None) -> list[Any]:
    """NULL sorts as the smallest value (first ascending, last descending), then slide id in the
    sort's direction, so the order is total. SQLite orders NULL so by default; PostgreSQL is told,
    and its sort indexes (migration 0003) are declared NULLS FIRST so they serve both directions.
    ``source``: the columns to order (the slide table's by default)."""
    columns = SLIDE.c if source is None else source
    target, slide_id = columns[sort.field.name], columns.slide_id
    if sort.descending:
        first = target.desc().nulls_last() if postgres else target.desc()
        return [first, slide_id.desc()]
    first = target.asc().nulls_first() if postgres else target.asc()
    return [first, slide_id.asc()]


def after(sort: SortSpec, cursor: Cursor, source: Any = None) -> ColumnElement[bool]:
    """Rows strictly after ``cursor`` in :func:`order_by`'s order."""
    columns = SLIDE.c if source is None else source
    target, slide_id = columns[sort.field.name], columns.slide_id
    if cursor.value is None:
        if sort.descending:
            return and_(target.is_(None), slide_id < cursor.slide_id)
        return or_(and_(target.is_(None), slide_id > cursor.slide_id), target.is_not(None))
    value: SearchValue | datetime = cursor.value
    position = tuple_(target, slide_id)
    if sort.descending:
        # A row value comparison is one index range on PostgreSQL and SQLite alike.
        return or_(position < tuple_(value, cursor.slide_id), target.is_(None))
    return position > tuple_(value, cursor.slide_id)


PAGE_PART: Final = -1
TOTAL_PART: Final = 0


def summary(
    query: SearchQuery,
    where: list[ColumnElement[bool]],
    generation: int,
    position: Cursor | None,
    *,
    postgres: bool,
    facet_values: int,
) -> Any:
    """One statement for a page's slide ids, the total and every facet, so the filters run once:
    the matching rows' narrow columns are materialized, then counted and grouped.

    Rows ``(part, value, n, slide_id)``: part :data:`TOTAL_PART` (n), part *i* ≥ 1 the *i*-th
    facet's values (value, n), part :data:`PAGE_PART` the page's slide ids with their rank in n
    (at most ``query.limit + 1``: one more says that a next page exists)."""
    names = {query.sort.field.name, *(f for f in query.facets if f != "model")}
    matched = (
        select(SLIDE.c.slide_id, *(SLIDE.c[name] for name in sorted(names)))
        .where(*where)
        .cte("matched")
        .prefix_with("MATERIALIZED")
    )
    no_id = cast(null(), SLIDE.c.slide_id.type)
    no_text = cast(null(), String)
    parts: list[Any] = [
        select(literal(TOTAL_PART).label("part"), no_text.label("value"), func.count(), no_id)
    ]
    parts[0] = parts[0].select_from(matched)
    for number, name in enumerate(query.facets, start=1):
        count = func.count().label("n")
        if name == "model":
            value: Any = MODEL_RUN.c.model
            source: Any = matched.outerjoin(
                MODEL_RUN,
                and_(
                    MODEL_RUN.c.generation == generation,
                    MODEL_RUN.c.slide_id == matched.c.slide_id,
                ),
            )
        else:
            value, source = matched.c[name], matched
        grouped = (
            select(literal(number).label("part"), cast(value, String).label("value"), count)
            .select_from(source)
            .group_by(value)
            .order_by(count.desc(), value)
            .limit(facet_values)
            .subquery()
        )
        parts.append(select(grouped.c.part, grouped.c.value, grouped.c.n, no_id))
    order = order_by(query.sort, postgres=postgres, source=matched.c)
    # The page's rows carry their rank, so their order survives the UNION.
    rank = func.row_number().over(order_by=order)
    page = select(literal(PAGE_PART).label("part"), no_text, rank, matched.c.slide_id)
    if position is not None:
        page = page.where(after(query.sort, position, matched.c))
    ordered = page.order_by(*order).limit(query.limit + 1).subquery()
    parts.append(select(ordered))
    return union_all(*parts)


def live_generation() -> Select[Any]:
    """The generation that answers queries (``slidestream admin reindex`` swaps it)."""
    pointer = SearchGenerationRow.__table__  # type: ignore[attr-defined]
    return select(pointer.c.live).where(pointer.c.id == 1)
