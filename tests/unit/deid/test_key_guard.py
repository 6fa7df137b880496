"""The deid keys checked at start: fingerprints recorded per version, a start with other bytes
under a recorded version refused, plaintext vault rows of earlier releases sealed (SQLite, the
real migrations; the service's own start-up for the refusal)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from slidestream_deid.adapters.key_records import SqlKeyRecords
from slidestream_deid.adapters.repository import SqlDeidRecords
from slidestream_deid.adapters.vault_cipher import AesGcmVaultCipher
from slidestream_deid.domain.keys import KeyMismatchError, VaultKeys
from slidestream_deid.domain.pseudonyms import VaultEntry
from slidestream_deid.key_guard import KeyGuard
from slidestream_deid.main import MIGRATIONS_DIR, create_app
from slidestream_deid.settings import DeidSettings
from slidestream_platform.db import (
    downgrade_to,
    make_engine,
    upgrade_to_head,
)
from slidestream_platform.objectstore.minio_store import MinioObjectStore
from slidestream_wsi.pseudonyms import PseudonymKey

PSEUDONYM_KEY = b"p" * 64
OTHER_PSEUDONYM_KEY = b"q" * 64
VAULT_KEY = b"v" * 64
BEFORE_ENCRYPTION = "dd9d4f3f03ba"
"""The deid revision whose vault held originals in plaintext."""


def guard(
    engine: Engine,
    pseudonym: PseudonymKey,
    vault: VaultKeys | None = None,
) -> KeyGuard:
    vault = vault or VaultKeys(1, {1: VAULT_KEY})
    records = SqlDeidRecords(engine, AesGcmVaultCipher(vault))
    return KeyGuard(pseudonym, vault, SqlKeyRecords(engine), records)


def recorded(engine: Engine) -> list[tuple[str, int, str]]:
    query = "SELECT purpose, key_version, fingerprint FROM deid_key_fingerprint ORDER BY 1, 2"
    with engine.connect() as connection:
        return [(row[0], row[1], row[2]) for row in connection.execute(text(query))]


async def test_the_first_start_records_each_key_version_and_later_starts_pass(
    engine: Engine,
) -> None:
    key = PseudonymKey(1, PSEUDONYM_KEY)
    await guard(engine, key).at_start()
    first = recorded(engine)
    await guard(engine, key).at_start()

    assert [(purpose, version) for purpose, version, _ in first] == [
        ("pseudonym", 1),
        ("vault", 1),
    ]
    assert recorded(engine) == first
    assert not [row for row in first if PSEUDONYM_KEY.decode() in row[2]]


async def test_other_bytes_under_a_recorded_pseudonym_version_refuse_the_start(
    engine: Engine,
) -> None:
    await guard(engine, PseudonymKey(4, PSEUDONYM_KEY)).at_start()

    with pytest.raises(KeyMismatchError, match="pseudonym key configured as version 4"):
        await guard(engine, PseudonymKey(4, OTHER_PSEUDONYM_KEY)).at_start()
    # A rotation is a new version with a new key; the old version's key under it is refused.
    await guard(engine, PseudonymKey(5, OTHER_PSEUDONYM_KEY)).at_start()
    with pytest.raises(KeyMismatchError, match="version 6 is the key of version 4"):
        await guard(engine, PseudonymKey(6, PSEUDONYM_KEY)).at_start()
    assert [version for purpose, version, _ in recorded(engine) if purpose == "pseudonym"] == [
        4,
        5,
    ]


async def test_a_retired_vault_key_with_other_bytes_refuses_the_start(engine: Engine) -> None:
    key = PseudonymKey(1, PSEUDONYM_KEY)
    await guard(engine, key).at_start()
    rotated = VaultKeys(2, {1: b"w" * 64, 2: b"x" * 64})

    with pytest.raises(KeyMismatchError, match="vault key configured as version 1"):
        await guard(engine, key, rotated).at_start()


def test_a_vault_key_equal_to_the_pseudonym_key_is_refused(engine: Engine) -> None:
    with pytest.raises(KeyMismatchError, match="vault key 1 is the pseudonym key"):
        guard(engine, PseudonymKey(1, PSEUDONYM_KEY), VaultKeys(1, {1: PSEUDONYM_KEY}))


async def test_plaintext_rows_of_the_previous_release_are_sealed_at_start(engine: Engine) -> None:
    downgrade_to(engine, "deid", MIGRATIONS_DIR, BEFORE_ENCRYPTION)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO deid_pseudonym_vault (tenant, role, original_id, key_version, "
                "pseudonym, created_at) VALUES ('acme', 'case', 'S26-LEGACY-0001', 1, "
                "'PSN-1-LEGACYAAAAAAAAAAAAA', '2026-01-01 00:00:00')"
            )
        )
    upgrade_to_head(engine, "deid", MIGRATIONS_DIR)

    start = guard(engine, PseudonymKey(1, PSEUDONYM_KEY))
    await start.at_start()

    with engine.connect() as connection:
        [(original_id, sealed, key_id)] = connection.execute(
            text("SELECT original_id, original_sealed, vault_key_id FROM deid_pseudonym_vault")
        ).all()
    assert original_id is None and key_id == 1 and b"LEGACY" not in bytes(sealed)
    repository = SqlDeidRecords(engine, AesGcmVaultCipher(VaultKeys(1, {1: VAULT_KEY})))
    assert repository.originals_of("acme", "PSN-1-LEGACYAAAAAAAAAAAAA") == [
        VaultEntry("acme", "case", "S26-LEGACY-0001", 1, "PSN-1-LEGACYAAAAAAAAAAAAA")
    ]


async def test_the_service_does_not_start_on_a_mismatching_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole start-up of ``main.create_app`` (migrations, then the key check) up to the
    broker, which a refused start never reaches. No object store here: bucket creation is a
    no-op."""
    monkeypatch.setattr(MinioObjectStore, "ensure_buckets", lambda _store, _buckets: None)
    vault_file = tmp_path / "vault-key"
    vault_file.write_bytes(VAULT_KEY + b"\n")
    first, second = tmp_path / "key-first", tmp_path / "key-second"
    first.write_bytes(PSEUDONYM_KEY + b"\n")
    second.write_bytes(OTHER_PSEUDONYM_KEY + b"\n")

    def start(key_file: Path) -> DeidSettings:
        return DeidSettings(
            pseudonym_key_file=key_file,
            pseudonym_key_version=2,
            vault_key_file=vault_file,
            data_dir=tmp_path,
        )

    engine = make_engine(start(first).database, "deid")
    upgrade_to_head(engine, "deid", MIGRATIONS_DIR)
    await guard(engine, PseudonymKey(2, PSEUDONYM_KEY)).at_start()  # version 2 = first's bytes
    engine.dispose()

    app = create_app(start(second))
    with pytest.raises(KeyMismatchError, match="pseudonym key configured as version 2"):
        async with app.router.lifespan_context(app):
            pytest.fail("the service started on a key that does not match its version")
