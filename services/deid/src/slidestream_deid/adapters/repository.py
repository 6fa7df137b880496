"""Persistence of the deid service behind a small Protocol: decided inputs (the platform's
decision records), audit entries, the pseudonym vault and the quarantine retention schedule.

Every write is insert-if-absent inside one transaction, so a redelivered or concurrently
processed event leaves exactly one row of each kind. Vault originals are encrypted on the way
in (:class:`~slidestream_deid.adapters.vault_cipher.VaultCipher`) and found by pseudonym, never
by their plaintext; the slide path never decrypts.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol
from uuid import UUID

from sqlalchemy import Engine, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from slidestream_deid.adapters.tables import AuditRow, ProcessedRow, RetentionRow, VaultRow
from slidestream_deid.adapters.vault_cipher import Sealed, VaultCipher, vault_context
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
    def __init__(self, engine: Engine, cipher: VaultCipher) -> None:
        super().__init__(engine, ProcessedRow)
        self._cipher = cipher

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

    def _add_vault_entry(self, session: Session, entry: VaultEntry) -> None:
        query = select(VaultRow.id).where(
            VaultRow.tenant == entry.tenant,
            VaultRow.role == entry.role,
            VaultRow.pseudonym == entry.pseudonym,
        )
        if session.exec(query).first() is None:
            context = vault_context(entry.tenant, entry.role, entry.pseudonym)
            sealed = self._cipher.seal(entry.original_id, context)
            session.add(
                VaultRow(
                    tenant=entry.tenant,
                    role=entry.role,
                    original_sealed=sealed.blob,
                    vault_key_id=sealed.key_id,
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
        """The original identifier(s) behind a pseudonym of any key version (raises
        VaultCipherError when a row's vault key is not configured here)."""
        with Session(self._engine) as session:
            query = select(VaultRow).where(
                VaultRow.tenant == tenant, VaultRow.pseudonym == pseudonym
            )
            return [
                VaultEntry(
                    row.tenant, row.role, self._original(row), row.key_version, row.pseudonym
                )
                for row in session.exec(query)
            ]

    def _original(self, row: VaultRow) -> str:
        if row.vault_key_id is None or row.original_sealed is None:
            if row.original_id is None:
                raise ValueError(f"vault row {row.id} holds no original")
            return row.original_id  # written before encryption, not sealed yet
        context = vault_context(row.tenant, row.role, row.pseudonym)
        return self._cipher.open(Sealed(row.vault_key_id, row.original_sealed), context)

    # -- vault key rotation ----------------------------------------------------------------------

    def vault_rows_by_key(self) -> dict[int | None, int]:
        """How many vault rows each vault key id sealed (``None``: plaintext, not sealed yet)."""
        with Session(self._engine) as session:
            query = select(VaultRow.vault_key_id, func.count()).group_by(col(VaultRow.vault_key_id))
            return {key_id: int(count) for key_id, count in session.exec(query)}

    def reseal_vault(self, batch_rows: int) -> int:
        """Encrypt under the current vault key every row that is plaintext or sealed under
        another configured key, ``batch_rows`` per transaction; returns how many. Rows under a
        key this replica does not have are left as they are. Concurrent replicas may seal the
        same row twice: either result is a valid seal of the same original."""
        retired = [
            key_id
            for key_id in self.vault_rows_by_key()
            if key_id is not None
            and key_id != self._cipher.current_id
            and self._cipher.knows(key_id)
        ]
        condition = or_(
            col(VaultRow.vault_key_id).is_(None), col(VaultRow.vault_key_id).in_(retired)
        )
        resealed, after_id = 0, 0
        while True:
            with session_scope(self._engine) as session:
                query = (
                    select(VaultRow)
                    .where(condition, col(VaultRow.id) > after_id)
                    .order_by(col(VaultRow.id))
                    .limit(batch_rows)
                )
                rows = list(session.exec(query))
                for row in rows:
                    original = self._original(row)
                    context = vault_context(row.tenant, row.role, row.pseudonym)
                    sealed = self._cipher.seal(original, context)
                    row.original_sealed, row.vault_key_id = sealed.blob, sealed.key_id
                    row.original_id = None
                    session.add(row)
            if not rows:
                return resealed
            resealed += len(rows)
            after_id = rows[-1].id or after_id
