"""The recorded fingerprints of the deid keys (``deid_key_fingerprint``) behind a small Protocol.

Recording is insert-only: a version's fingerprint, once stored, is never changed by the service
(an operator who really replaced a key deletes the row by hand, knowingly).
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import Engine
from sqlmodel import Session, select

from slidestream_deid.adapters.tables import KeyFingerprintRow
from slidestream_deid.domain.keys import KeyPurpose
from slidestream_platform.db import session_scope


class KeyRecords(Protocol):
    def fingerprints(self, purpose: KeyPurpose) -> dict[int, str]:
        """Version → fingerprint of every recorded key of ``purpose``."""
        ...

    def record(self, purpose: KeyPurpose, version: int, fingerprint: str) -> None:
        """Store a new version's fingerprint; raises IntegrityError when another replica
        recorded that version meanwhile."""
        ...


class SqlKeyRecords:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def fingerprints(self, purpose: KeyPurpose) -> dict[int, str]:
        with Session(self._engine) as session:
            query = select(KeyFingerprintRow).where(KeyFingerprintRow.purpose == purpose.value)
            return {row.key_version: row.fingerprint for row in session.exec(query)}

    def record(self, purpose: KeyPurpose, version: int, fingerprint: str) -> None:
        with session_scope(self._engine) as session:
            session.add(
                KeyFingerprintRow(
                    purpose=purpose.value, key_version=version, fingerprint=fingerprint
                )
            )
