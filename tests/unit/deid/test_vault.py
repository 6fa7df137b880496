"""The pseudonym vault at rest: originals encrypted (AES-GCM) under a key id per row, found by
pseudonym, readable again after the vault key rotates (SQLite, the real migrations)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text

from slidestream_deid.adapters.repository import SqlDeidRecords
from slidestream_deid.adapters.vault_cipher import AesGcmVaultCipher, VaultCipherError
from slidestream_deid.domain.keys import VaultKeys
from slidestream_deid.domain.pseudonyms import VaultEntry
from slidestream_platform.db import session_scope

VAULT_KEY_1 = b"1" * 64
VAULT_KEY_2 = b"2" * 64
PATIENT = VaultEntry("acme", "patient", "MRN-77123-PLAINTEXT", 1, "PSN-1-PATIENTAAAAAAAAAAAAA")
CASE = VaultEntry("acme", "case", "S26-00042-PLAINTEXT", 1, "PSN-1-CASEAAAAAAAAAAAAAAAA")


def records(engine: Engine, current: int, secrets: dict[int, bytes]) -> SqlDeidRecords:
    return SqlDeidRecords(engine, AesGcmVaultCipher(VaultKeys(current, secrets)))


def store(repository: SqlDeidRecords, engine: Engine, *entries: VaultEntry) -> None:
    """The vault rows as a decision stores them (in its transaction)."""
    with session_scope(engine) as session:
        repository.outcome_rows(audit=None, vault=entries, retention=None)(session)


def raw_rows(engine: Engine) -> list[tuple[str | None, bytes, int]]:
    query = (
        "SELECT original_id, original_sealed, vault_key_id FROM deid_pseudonym_vault ORDER BY id"
    )
    with engine.connect() as connection:
        return [(row[0], bytes(row[1]), row[2]) for row in connection.execute(text(query))]


def test_originals_are_not_plaintext_in_the_database_and_decrypt_back(engine: Engine) -> None:
    repository = records(engine, 1, {1: VAULT_KEY_1})
    store(repository, engine, PATIENT, CASE)
    store(repository, engine, PATIENT)  # the vault is shared by every slide of a patient: one row

    rows = raw_rows(engine)
    assert len(rows) == 2
    for original_id, sealed, key_id in rows:
        assert original_id is None and key_id == 1
        assert b"PLAINTEXT" not in sealed and b"MRN-77123" not in sealed
        assert len(sealed) > len(PATIENT.original_id)  # nonce and tag
    assert repository.originals_of("acme", PATIENT.pseudonym) == [PATIENT]
    assert repository.originals_of("acme", CASE.pseudonym) == [CASE]
    assert repository.originals_of("other", PATIENT.pseudonym) == []


def test_the_same_original_encrypts_differently_each_time(engine: Engine) -> None:
    repository = records(engine, 1, {1: VAULT_KEY_1})
    twin = VaultEntry("beta", "patient", PATIENT.original_id, 1, PATIENT.pseudonym)
    store(repository, engine, PATIENT, twin)

    [(_, first, _), (_, second, _)] = raw_rows(engine)
    assert first != second  # a fresh nonce per row: equal originals do not show as equal


def test_a_ciphertext_moved_to_another_row_does_not_decrypt(engine: Engine) -> None:
    repository = records(engine, 1, {1: VAULT_KEY_1})
    store(repository, engine, PATIENT, CASE)
    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE deid_pseudonym_vault SET original_sealed = (SELECT original_sealed FROM "
                "deid_pseudonym_vault WHERE role = 'patient') WHERE role = 'case'"
            )
        )

    with pytest.raises(VaultCipherError, match="does not decrypt under vault key 1"):
        repository.originals_of("acme", CASE.pseudonym)


def test_rotating_the_vault_key_keeps_old_rows_readable_and_reseals_them(engine: Engine) -> None:
    store(records(engine, 1, {1: VAULT_KEY_1}), engine, PATIENT)
    rotated = records(engine, 2, {1: VAULT_KEY_1, 2: VAULT_KEY_2})
    store(rotated, engine, CASE)

    assert [key_id for _, _, key_id in raw_rows(engine)] == [1, 2]
    assert rotated.originals_of("acme", PATIENT.pseudonym) == [PATIENT]
    assert rotated.originals_of("acme", CASE.pseudonym) == [CASE]
    assert rotated.vault_rows_by_key() == {1: 1, 2: 1}

    assert rotated.reseal_vault(batch_rows=1) == 1
    assert [key_id for _, _, key_id in raw_rows(engine)] == [2, 2]
    # Once resealed, the retired key is no longer needed.
    only_new = records(engine, 2, {2: VAULT_KEY_2})
    assert only_new.originals_of("acme", PATIENT.pseudonym) == [PATIENT]
    assert only_new.reseal_vault(batch_rows=10) == 0


def test_rows_under_a_key_that_is_not_configured_are_left_alone(engine: Engine) -> None:
    store(records(engine, 1, {1: VAULT_KEY_1}), engine, PATIENT)
    without_old_key = records(engine, 2, {2: VAULT_KEY_2})

    assert without_old_key.reseal_vault(batch_rows=10) == 0
    with pytest.raises(VaultCipherError, match="vault key 1 is not configured"):
        without_old_key.originals_of("acme", PATIENT.pseudonym)
    # The wrong bytes under id 1 are not the key the row was sealed with.
    wrong_old_key = records(engine, 2, {1: VAULT_KEY_2 + b"x", 2: VAULT_KEY_2})
    with pytest.raises(VaultCipherError, match="does not decrypt"):
        wrong_old_key.originals_of("acme", PATIENT.pseudonym)
