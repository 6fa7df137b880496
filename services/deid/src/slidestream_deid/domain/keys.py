"""The deid service's two secrets, told apart and pinned to their versions.

* the **pseudonym key** (HMAC, :class:`slidestream_wsi.pseudonyms.PseudonymKey`): its version
  is in every pseudonym (``PSN-<version>-…``), so the bytes of a version must never change —
  other bytes under the same version would give the same identifier a second, unrelated
  pseudonym and break every link to the first;
* the **vault keys** (AES-GCM, :class:`VaultKeys`): the vault's original identifiers are
  encrypted under the current one; the id of the key is stored with each row, so earlier keys
  stay readable after a rotation.

A key is pinned by its *fingerprint*: HMAC-SHA256 (RFC 2104) under the key of a fixed label
naming its purpose. The fingerprint shows whether two files hold the same key without holding
the key itself (a 256-bit secret cannot be recovered from it, nor guessed against it). The first
start with a new version records it; every later start compares, in constant time, and refuses
to run on other bytes.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

FINGERPRINT_LABEL = b"slidestream/deid/key-fingerprint/v1/"
"""Domain separation: a fingerprint is never an HMAC the pseudonyms or the vault also compute."""


class KeyPurpose(StrEnum):
    PSEUDONYM = "pseudonym"
    VAULT = "vault"


class KeyMismatchError(ValueError):
    """A configured key is not the one recorded for its version, or repeats another one; the
    service refuses to start (the message names the purpose and version, never key bytes)."""


def key_fingerprint(purpose: KeyPurpose, secret: bytes) -> str:
    """Hex HMAC-SHA256 of the purpose's label under ``secret`` (64 characters)."""
    label = FINGERPRINT_LABEL + purpose.value.encode("ascii")
    return hmac.new(secret, label, hashlib.sha256).hexdigest()


def check_fingerprint(
    purpose: KeyPurpose, version: int, configured: str, recorded: Mapping[int, str]
) -> bool:
    """Whether ``configured`` (the fingerprint of the bytes given for ``version``) must be
    recorded: ``True`` for a version seen for the first time. Raises :class:`KeyMismatchError`
    when ``version`` was recorded with other bytes, or when another version has these bytes (a
    rotation that kept the old key, or a version number lowered by mistake)."""
    known = recorded.get(version)
    if known is not None:
        if not hmac.compare_digest(known, configured):
            raise KeyMismatchError(
                f"the {purpose.value} key configured as version {version} is not the key "
                f"version {version} was first used with (its fingerprint differs): restore that "
                "key's file, or rotate to a new version with a new key"
            )
        return False
    for other, fingerprint in sorted(recorded.items()):
        if hmac.compare_digest(fingerprint, configured):
            raise KeyMismatchError(
                f"the {purpose.value} key configured as version {version} is the key of version "
                f"{other}: a new version needs a new key"
            )
    return True


@dataclass(frozen=True, slots=True)
class VaultKeys:
    """The vault's keys by id: ``current_id`` encrypts, every one decrypts. Never shown."""

    current_id: int
    secrets: Mapping[int, bytes] = field(repr=False)

    def __post_init__(self) -> None:
        if self.current_id not in self.secrets:
            raise ValueError(f"vault key {self.current_id} (the current one) has no secret")
        if min(self.secrets) < 1:
            raise ValueError("vault key ids start at 1")


def check_keys_are_separate(pseudonym_secret: bytes, vault: VaultKeys) -> None:
    """Refuse a vault key that is the pseudonym key: whoever holds the pseudonym key for
    pseudonymisation must not thereby be able to decrypt the originals."""
    for key_id, secret in sorted(vault.secrets.items()):
        if hmac.compare_digest(secret, pseudonym_secret):
            raise KeyMismatchError(
                f"vault key {key_id} is the pseudonym key: the vault needs a key of its own"
            )
