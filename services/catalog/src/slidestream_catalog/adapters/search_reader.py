"""Cohort queries against the search tables: a page with its total and facets, the rows after a
keyset position (exports page with it), and the ``qc.*`` / ``score.*`` names a tenant has.

Every read is one read-only transaction on the live generation, bounded in time: PostgreSQL by
``SET LOCAL statement_timeout``, SQLite by a progress handler that interrupts the statement at the
same deadline, so no query can hold a worker (or the process) indefinitely.
"""

from __future__ import annotations

import sqlite3
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Protocol
from uuid import UUID

from sqlalchemy import Connection, Engine, RowMapping, select, text
from sqlalchemy.exc import OperationalError

from slidestream_catalog.adapters.search_sql import (
    MEASURE,
    MODEL_RUN,
    PAGE_PART,
    SCORE,
    SLIDE,
    TOTAL_PART,
    after,
    conditions,
    live_generation,
    order_by,
    scope,
    summary,
)
from slidestream_catalog.domain.search_cursor import Cursor, decode_cursor, encode_cursor
from slidestream_catalog.domain.search_query import SearchQuery
from slidestream_contracts.search import SEARCH_FIELDS, FacetCount, SearchPage, SlideHit
from slidestream_platform.db import is_postgres
from slidestream_platform.errors import RetryableError

FACET_VALUES: Final = 50
"""Values per facet, most frequent first (a facet is a summary, not an export)."""
SQLITE_PROGRESS_STEPS: Final = 10_000
"""SQLite virtual-machine steps between two deadline checks (well under a millisecond)."""
MODEL_FIELD: Final = "model"


class SearchTimeoutError(RetryableError):
    """The query ran past the statement timeout and was cancelled by the database."""

    reason = "query-timeout"


@dataclass(frozen=True, slots=True)
class TenantFields:
    """The open field families a tenant's slides have: ``qc.<measure>`` and
    ``score.<model>.<output>`` names, sorted."""

    measures: tuple[str, ...]
    scores: tuple[str, ...]


class SlideSearch(Protocol):
    def search(self, tenant: str, query: SearchQuery, cursor: str | None) -> SearchPage: ...

    def rows_after(
        self, tenant: str, query: SearchQuery, position: Cursor | None, size: int
    ) -> tuple[tuple[SlideHit, ...], Cursor | None]: ...

    def tenant_fields(self, tenant: str) -> TenantFields: ...


class SqlSlideSearch:
    def __init__(self, engine: Engine, *, statement_timeout_ms: int) -> None:
        self._engine = engine
        self._timeout_ms = statement_timeout_ms
        self._postgres = is_postgres(engine)

    def search(self, tenant: str, query: SearchQuery, cursor: str | None) -> SearchPage:
        position = decode_cursor(tenant, query, cursor) if cursor else None
        with self._reading() as (connection, generation):
            where = conditions(query, generation, tenant, postgres=self._postgres)
            statement = summary(
                query,
                where,
                generation,
                position,
                postgres=self._postgres,
                facet_values=FACET_VALUES,
            )
            total, ranked = 0, []
            facets: dict[str, list[FacetCount]] = {name: [] for name in query.facets}
            for part, value, n, slide_id in connection.execute(statement):
                if part == TOTAL_PART:
                    total = int(n)
                elif part == PAGE_PART:
                    ranked.append((int(n), slide_id))
                else:
                    facets[query.facets[part - 1]].append(FacetCount(value=value, count=int(n)))
            ids = [slide_id for _, slide_id in sorted(ranked)]
            page = self._rows(connection, generation, tenant, ids[: query.limit])
            hits, last = self._hits_and_next(
                connection, generation, query, page, more=len(ids) > query.limit
            )
            return SearchPage(
                items=hits,
                total=total,
                facets={
                    name: tuple(sorted(counts, key=_by_count)) for name, counts in facets.items()
                },
                next_cursor=encode_cursor(tenant, query, last) if last else None,
            )

    def _rows(
        self, connection: Connection, generation: int, tenant: str, ids: list[UUID]
    ) -> list[RowMapping]:
        """The slides' rows in the order of ``ids``. By primary key, ordered here: an ORDER BY
        could tempt a planner into walking a sort index over the tenant's every row to find
        these few."""
        statement = select(SLIDE).where(
            SLIDE.c.generation == generation, SLIDE.c.slide_id.in_(ids), SLIDE.c.tenant == tenant
        )
        rows = {row["slide_id"]: row for row in connection.execute(statement).mappings()}
        return [rows[slide_id] for slide_id in ids if slide_id in rows]

    def rows_after(
        self, tenant: str, query: SearchQuery, position: Cursor | None, size: int
    ) -> tuple[tuple[SlideHit, ...], Cursor | None]:
        """Up to ``size`` rows after ``position``, and where the next call starts (``None``:
        nothing is left)."""
        with self._reading() as (connection, generation):
            where = conditions(query, generation, tenant, postgres=self._postgres)
            return self._page(connection, generation, query, where, position, size)

    def tenant_fields(self, tenant: str) -> TenantFields:
        with self._reading() as (connection, generation):
            owned = select(SLIDE.c.slide_id).where(scope(generation, tenant))
            measures = connection.execute(
                select(MEASURE.c.name)
                .distinct()
                .where(MEASURE.c.generation == generation, MEASURE.c.slide_id.in_(owned))
                .order_by(MEASURE.c.name)
            ).scalars()
            scores = connection.execute(
                select(SCORE.c.model, SCORE.c.output)
                .distinct()
                .where(SCORE.c.generation == generation, SCORE.c.slide_id.in_(owned))
                .order_by(SCORE.c.model, SCORE.c.output)
            ).all()
            return TenantFields(
                measures=tuple(str(name) for name in measures),
                scores=tuple(f"{model}.{output}" for model, output in scores),
            )

    # -- one page -------------------------------------------------------------------------

    def _page(
        self,
        connection: Connection,
        generation: int,
        query: SearchQuery,
        where: list[Any],
        position: Cursor | None,
        size: int,
    ) -> tuple[tuple[SlideHit, ...], Cursor | None]:
        statement = select(SLIDE).where(*where)
        if position is not None:
            statement = statement.where(after(query.sort, position))
        statement = statement.order_by(*order_by(query.sort, postgres=self._postgres)).limit(
            size + 1
        )
        rows = connection.execute(statement).mappings().all()
        return self._hits_and_next(
            connection, generation, query, rows[:size], more=len(rows) > size
        )

    def _hits_and_next(
        self,
        connection: Connection,
        generation: int,
        query: SearchQuery,
        page: Sequence[RowMapping],
        *,
        more: bool,
    ) -> tuple[tuple[SlideHit, ...], Cursor | None]:
        hits = self._hits(connection, generation, page)
        if not more or not page:
            return hits, None
        last = page[-1]
        value = last[query.sort.field.name]
        if isinstance(value, datetime):
            value = _utc(value)
        elif isinstance(value, int):
            value = float(value)
        return hits, Cursor(value, last["slide_id"])

    def _hits(
        self, connection: Connection, generation: int, rows: Sequence[RowMapping]
    ) -> tuple[SlideHit, ...]:
        if not rows:
            return ()
        ids = [row["slide_id"] for row in rows]
        measures: dict[UUID, dict[str, float]] = defaultdict(dict)
        for slide_id, name, value in connection.execute(
            select(MEASURE.c.slide_id, MEASURE.c.name, MEASURE.c.value).where(
                MEASURE.c.generation == generation, MEASURE.c.slide_id.in_(ids)
            )
        ):
            measures[slide_id][name] = value
        scores: dict[UUID, dict[str, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
        for slide_id, model, output, value in connection.execute(
            select(SCORE.c.slide_id, SCORE.c.model, SCORE.c.output, SCORE.c.value).where(
                SCORE.c.generation == generation, SCORE.c.slide_id.in_(ids)
            )
        ):
            scores[slide_id][model][output] = value
        models: dict[UUID, list[str]] = defaultdict(list)
        for slide_id, model in connection.execute(
            select(MODEL_RUN.c.slide_id, MODEL_RUN.c.model)
            .where(MODEL_RUN.c.generation == generation, MODEL_RUN.c.slide_id.in_(ids))
            .order_by(MODEL_RUN.c.model)
        ):
            models[slide_id].append(model)
        return tuple(
            SlideHit(
                slide_id=row["slide_id"],
                fields=_fields(row, models.get(row["slide_id"])),
                qc=measures.get(row["slide_id"], {}),
                scores={model: dict(out) for model, out in scores.get(row["slide_id"], {}).items()},
            )
            for row in rows
        )

    # -- the transaction ------------------------------------------------------------------

    @contextmanager
    def _reading(self) -> Iterator[tuple[Connection, int]]:
        """A read-only transaction with a deadline, and the live generation."""
        try:
            with (
                self._engine.connect() as connection,
                connection.begin(),
                self._deadline(connection),
            ):
                generation: int | None = connection.execute(live_generation()).scalar()
                yield connection, 1 if generation is None else int(generation)
        except OperationalError as error:
            if _is_timeout(error):
                raise SearchTimeoutError(
                    f"the query ran past {self._timeout_ms} ms and was cancelled"
                ) from error
            raise

    @contextmanager
    def _deadline(self, connection: Connection) -> Iterator[None]:
        if self._postgres:
            # An integer we own, not caller input: SET takes no bound parameters.
            connection.execute(text(f"SET LOCAL statement_timeout = {int(self._timeout_ms)}"))
            connection.execute(text("SET TRANSACTION READ ONLY"))
            yield
            return
        raw = connection.connection.driver_connection
        if not isinstance(raw, sqlite3.Connection):
            yield
            return
        deadline = time.monotonic() + self._timeout_ms / 1000

        def past_deadline() -> int:
            return 1 if time.monotonic() > deadline else 0

        raw.set_progress_handler(past_deadline, SQLITE_PROGRESS_STEPS)
        try:
            yield
        finally:
            raw.set_progress_handler(None, 0)


def _by_count(facet: FacetCount) -> tuple[int, bool, str]:
    return -facet.count, facet.value is None, facet.value or ""


def _fields(row: RowMapping, models: list[str] | None) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name in SEARCH_FIELDS:
        if name == MODEL_FIELD:
            fields[name] = ",".join(models) if models else None
            continue
        value = row[name]
        fields[name] = _utc(value) if isinstance(value, datetime) else value
    return fields


def _utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; the projection writes UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _is_timeout(error: OperationalError) -> bool:
    message = str(error.orig).lower()
    return "statement timeout" in message or "interrupted" in message
