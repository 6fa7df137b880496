"""Key fingerprints and the separation of the two deid keys (pure rules)."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from slidestream_deid.domain.keys import (
    FINGERPRINT_LABEL,
    KeyMismatchError,
    KeyPurpose,
    VaultKeys,
    check_fingerprint,
    check_keys_are_separate,
    key_fingerprint,
)

KEY_A = b"a" * 64
KEY_B = b"b" * 64


def test_a_fingerprint_is_an_hmac_of_a_fixed_label_never_the_key() -> None:
    fingerprint = key_fingerprint(KeyPurpose.PSEUDONYM, KEY_A)

    expected = hmac.new(KEY_A, FINGERPRINT_LABEL + b"pseudonym", hashlib.sha256).hexdigest()
    assert fingerprint == expected and len(fingerprint) == 64
    assert KEY_A.hex() not in fingerprint and hashlib.sha256(KEY_A).hexdigest() != fingerprint
    assert key_fingerprint(KeyPurpose.PSEUDONYM, KEY_A) == fingerprint  # deterministic
    assert key_fingerprint(KeyPurpose.PSEUDONYM, KEY_B) != fingerprint
    assert key_fingerprint(KeyPurpose.VAULT, KEY_A) != fingerprint  # purpose-separated


def test_a_new_version_is_recorded_and_the_same_bytes_pass_afterwards() -> None:
    fingerprint = key_fingerprint(KeyPurpose.PSEUDONYM, KEY_A)

    assert check_fingerprint(KeyPurpose.PSEUDONYM, 1, fingerprint, {}) is True
    assert check_fingerprint(KeyPurpose.PSEUDONYM, 1, fingerprint, {1: fingerprint}) is False


def test_other_bytes_under_a_recorded_version_are_refused_naming_the_version() -> None:
    recorded = {3: key_fingerprint(KeyPurpose.PSEUDONYM, KEY_A)}
    configured = key_fingerprint(KeyPurpose.PSEUDONYM, KEY_B)

    with pytest.raises(KeyMismatchError) as raised:
        check_fingerprint(KeyPurpose.PSEUDONYM, 3, configured, recorded)

    message = str(raised.value)
    assert "pseudonym key configured as version 3" in message
    assert configured not in message and recorded[3] not in message


def test_a_new_version_with_an_earlier_versions_key_is_refused() -> None:
    recorded = {1: key_fingerprint(KeyPurpose.VAULT, KEY_A)}

    with pytest.raises(KeyMismatchError, match="vault key configured as version 2 is the key"):
        check_fingerprint(KeyPurpose.VAULT, 2, recorded[1], recorded)


def test_the_vault_key_must_not_be_the_pseudonym_key() -> None:
    check_keys_are_separate(KEY_A, VaultKeys(1, {1: KEY_B}))
    with pytest.raises(KeyMismatchError, match="vault key 2 is the pseudonym key"):
        check_keys_are_separate(KEY_A, VaultKeys(3, {2: KEY_A, 3: KEY_B}))


def test_vault_keys_need_the_current_ones_secret_and_never_show_it() -> None:
    with pytest.raises(ValueError, match="current"):
        VaultKeys(2, {1: KEY_A})
    assert "aaaa" not in repr(VaultKeys(1, {1: KEY_A}))
