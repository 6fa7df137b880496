"""Persistence of the deid service behind a small Protocol: decided inputs (the platform's
decision records), audit entries, the pseudonym vault and the quarantine retention schedule.

Every write is insert-if-absent inside one transaction, so a redelivered or concurrently
processed event leaves exactly one row of each kind.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol
from uuid import UUID

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from slidestream_deid.adapters.tables import AuditRow, ProcessedRow, RetentionRow, VaultRow
from slidestream_deid.domain.pseudonyms import VaultEntry
from slidestream_platform.db import session_scope
from slidestream_platform.decisions import (
    WRITE_ATTEMPTS,
    DecisionRecords,
    RecordWith,
    SqlDecisionRecords,
)


class DeidRecords(DecisionRecords[ProcessedRow], Protocol):
    def outcome_rows(
        self,
        *,
        audit: AuditRow | None,
        vault: Sequence[VaultEntry],
        retention: RetentionRow | None,
    ) -> RecordWith: ...

    def schedule_retention(self, retention: RetentionRow) -> None: ...

    def due_for_deletion(self, now: datetime, limit: int) -> list[RetentionRow]: ...

    def mark_deleted(self, slide_id: UUID, at: datetime) -> None: ...


class SqlDeidRecords(SqlDecisionRecords[ProcessedRow]):
    def __init__(self, engine: Engine) -> None:
        super().__init__(engine, ProcessedRow)

    def outcome_rows(
        self,
        *,
        audit: AuditRow | None,
        vault: Sequence[VaultEntry],
        retention: RetentionRow | None,
    ) -> RecordWith:
        """The rows a decision is stored with (:class:`Decided`'s ``record_with``), each only
        if absent: the vault is shared by every slide of a patient."""

        def add(session: Session) -> None:
            for entry in vault:
                self._add_vault_entry(session, entry)
            if (
                audit is not None
                and session.get(AuditRow, (audit.slide_id, audit.input_sha256)) is None
            ):
                session.add(audit.model_copy())
            if retention is not None:
                self._add_retention(session, retention)

        return add

    @staticmethod
    def _add_vault_entry(session: Session, entry: VaultEntry) -> None:
        query = select(VaultRow).where(
            VaultRow.tenant == entry.tenant,
            VaultRow.role == entry.role,
            VaultRow.original_id == entry.original_id,
            VaultRow.key_version == entry.key_version,
        )
        if session.exec(query).first() is None:
            session.add(
                VaultRow(
                    tenant=entry.tenant,
                    role=entry.role,
                    original_id=entry.original_id,
                    key_version=entry.key_version,
                    pseudonym=entry.pseudonym,
                )
            )

    @staticmethod
    def _add_retention(session: Session, retention: RetentionRow) -> None:
        if session.get(RetentionRow, retention.slide_id) is None:
            session.add(retention.model_copy())

    def schedule_retention(self, retention: RetentionRow) -> None:
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                with session_scope(self._engine) as session:
                    self._add_retention(session, retention)
                return
            except IntegrityError:
                if attempt == WRITE_ATTEMPTS:
                    raise

    def due_for_deletion(self, now: datetime, limit: int) -> list[RetentionRow]:
        with Session(self._engine) as session:
            query = (
                select(RetentionRow)
                .where(col(RetentionRow.deleted_at).is_(None), RetentionRow.delete_after <= now)
                .order_by(col(RetentionRow.delete_after))
                .limit(limit)
            )
            return list(session.exec(query))

    def mark_deleted(self, slide_id: UUID, at: datetime) -> None:
        with session_scope(self._engine) as session:
            row = session.get(RetentionRow, slide_id)
            if row is not None and row.deleted_at is None:
                row.deleted_at = at
                session.add(row)

    # -- re-identification (authorised operators only; not exposed over HTTP) ----------------

    def originals_of(self, tenant: str, pseudonym: str) -> list[VaultEntry]:
        """The original identifier(s) behind a pseudonym of any key version."""
        with Session(self._engine) as session:
            query = select(VaultRow).where(
                VaultRow.tenant == tenant, VaultRow.pseudonym == pseudonym
            )
            return [
                VaultEntry(row.tenant, row.role, row.original_id, row.key_version, row.pseudonym)
                for row in session.exec(query)
            ]
