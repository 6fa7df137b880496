"""The deid keys, checked before the first slide (a start-up hook, after the migrations).

1. the vault keys are not the pseudonym key (at wiring, before any I/O);
2. each key's fingerprint (:mod:`slidestream_deid.domain.keys`) against the one recorded for
   its version — the pseudonym key's current version, every configured vault key id: a new
   version is recorded, other bytes under a recorded version stop the start with an error that
   names the version (:class:`~slidestream_deid.domain.keys.KeyMismatchError`);
3. the vault's rows are sealed under the current vault key: plaintext rows from before the
   vault was encrypted, and rows under a retired key after a rotation. Rows under a key this
   replica does not have are counted in the log and left alone (the slide path never decrypts,
   so they harm nothing here; keep the key until none is left).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from sqlalchemy.exc import IntegrityError

from slidestream_deid.adapters.key_records import KeyRecords
from slidestream_deid.domain.keys import (
    KeyMismatchError,
    KeyPurpose,
    VaultKeys,
    check_fingerprint,
    check_keys_are_separate,
    key_fingerprint,
)
from slidestream_platform.decisions import WRITE_ATTEMPTS
from slidestream_wsi.pseudonyms import PseudonymKey

logger = logging.getLogger(__name__)

RESEAL_BATCH_ROWS = 500
"""Vault rows re-encrypted per transaction at start: short transactions beside live slides."""


class VaultRows(Protocol):
    def vault_rows_by_key(self) -> dict[int | None, int]: ...

    def reseal_vault(self, batch_rows: int) -> int: ...


class KeyGuard:
    def __init__(
        self,
        pseudonym: PseudonymKey,
        vault: VaultKeys,
        records: KeyRecords,
        vault_rows: VaultRows,
    ) -> None:
        check_keys_are_separate(pseudonym.secret, vault)
        self._pseudonym = pseudonym
        self._vault = vault
        self._records = records
        self._vault_rows = vault_rows

    async def at_start(self) -> None:
        """The start-up hook: raises (and so stops the start) on a key that does not match."""
        await asyncio.to_thread(self.check_fingerprints)
        await asyncio.to_thread(self.reseal_vault)

    def check_fingerprints(self) -> None:
        self._pin(KeyPurpose.PSEUDONYM, self._pseudonym.version, self._pseudonym.secret)
        for key_id, secret in sorted(self._vault.secrets.items()):
            self._pin(KeyPurpose.VAULT, key_id, secret)

    def _pin(self, purpose: KeyPurpose, version: int, secret: bytes) -> None:
        configured = key_fingerprint(purpose, secret)
        for _ in range(WRITE_ATTEMPTS):
            recorded = self._records.fingerprints(purpose)
            if not check_fingerprint(purpose, version, configured, recorded):
                return
            try:
                self._records.record(purpose, version, configured)
            except IntegrityError:
                continue  # another replica recorded it first: compare with what it stored
            logger.info(
                "key version recorded", extra={"purpose": purpose.value, "key_version": version}
            )
            return
        raise KeyMismatchError(f"could not record the {purpose.value} key version {version}")

    def reseal_vault(self) -> None:
        resealed = self._vault_rows.reseal_vault(RESEAL_BATCH_ROWS)
        if resealed:
            logger.info(
                "vault rows sealed under the current vault key",
                extra={"rows": resealed, "vault_key_id": self._vault.current_id},
            )
        unreadable = {
            key_id: count
            for key_id, count in self._vault_rows.vault_rows_by_key().items()
            if key_id is not None and key_id not in self._vault.secrets
        }
        if unreadable:
            logger.warning(
                "vault rows are sealed under vault keys this replica does not have",
                extra={"rows_by_vault_key_id": unreadable},
            )
