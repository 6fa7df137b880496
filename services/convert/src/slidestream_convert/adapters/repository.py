"""The convert service's records: one row per converted input (see tables.py)."""

from __future__ import annotations

from typing import Protocol
from uuid import UUID

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from slidestream_convert.adapters.tables import ConversionRow, utc_now


class ConversionRecords(Protocol):
    def find(self, slide_id: UUID, input_sha256: str) -> ConversionRow | None: ...

    def insert_if_absent(self, row: ConversionRow) -> tuple[ConversionRow, bool]:
        """Store ``row`` and return it with ``True``; when a row for the same input exists
        already (another consumer converted it meanwhile), return that one with ``False``."""
        ...

    def mark_published(self, slide_id: UUID, input_sha256: str) -> None: ...


class SqlConversionRecords:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def find(self, slide_id: UUID, input_sha256: str) -> ConversionRow | None:
        with Session(self._engine) as session:
            return session.get(ConversionRow, (slide_id, input_sha256))

    def insert_if_absent(self, row: ConversionRow) -> tuple[ConversionRow, bool]:
        try:
            with Session(self._engine) as session:
                session.add(row)
                session.commit()
                session.refresh(row)
                return row, True
        except IntegrityError:
            existing = self.find(row.slide_id, row.input_sha256)
            if existing is None:  # pragma: no cover - the conflicting row cannot vanish
                raise
            return existing, False

    def mark_published(self, slide_id: UUID, input_sha256: str) -> None:
        with Session(self._engine) as session:
            statement = select(ConversionRow).where(
                ConversionRow.slide_id == slide_id, ConversionRow.input_sha256 == input_sha256
            )
            row = session.exec(statement).one()
            if row.published_at is None:
                row.published_at = utc_now()
                session.add(row)
                session.commit()
