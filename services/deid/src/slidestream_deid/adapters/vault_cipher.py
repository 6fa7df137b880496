"""Encryption at rest of the vault's original identifiers: AES-256-GCM (NIST SP 800-38D).

* Each vault key file's secret (at least 32 bytes, any form: the devstack writes hex) becomes a
  256-bit AES key through HKDF-SHA256 (RFC 5869) with a fixed ``info``, so the file format does
  not have to be exactly 32 raw bytes and the AES key is never the file's bytes themselves.
* Every row gets a fresh random 96-bit nonce (SP 800-38D §8.2.2: random nonces are safe for
  2^32 encryptions under one key, far beyond any vault; rotate long before).
* The row's context — tenant, role and pseudonym — is the associated data: a ciphertext copied
  into another row fails authentication instead of decrypting to another patient's identifier.
* Stored: ``nonce ‖ ciphertext ‖ tag`` and, in its own column, the id of the key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from slidestream_deid.domain.keys import VaultKeys

AES_KEY_BYTES = 32
"""AES-256."""
NONCE_BYTES = 12
"""96 bits, GCM's recommended IV length (SP 800-38D §5.2.1.1)."""
HKDF_INFO = b"slidestream/deid/vault-aes-256-gcm/v1"
CONTEXT_LABEL = b"slidestream/deid/vault-row/v1"


class VaultCipherError(ValueError):
    """A vault row cannot be decrypted: its key is not configured, or the key file is not the
    one it was encrypted with, or the row was altered (the message holds no identifier)."""


@dataclass(frozen=True, slots=True)
class Sealed:
    """One encrypted original identifier and the id of the key that encrypted it."""

    key_id: int
    blob: bytes = field(repr=False)


def vault_context(tenant: str, role: str, pseudonym: str) -> bytes:
    """The associated data binding a ciphertext to its row (each part length-prefixed, so
    ``("ab", "c")`` and ``("a", "bc")`` differ)."""
    message = bytearray(CONTEXT_LABEL)
    for part in (tenant, role, pseudonym):
        encoded = part.encode("utf-8")
        message += len(encoded).to_bytes(4, "big") + encoded
    return bytes(message)


class VaultCipher(Protocol):
    @property
    def current_id(self) -> int: ...

    def knows(self, key_id: int) -> bool: ...

    def seal(self, original: str, context: bytes) -> Sealed: ...

    def open(self, sealed: Sealed, context: bytes) -> str: ...


def _aes_key(secret: bytes) -> AESGCM:
    derived = HKDF(algorithm=hashes.SHA256(), length=AES_KEY_BYTES, salt=None, info=HKDF_INFO)
    return AESGCM(derived.derive(secret))


class AesGcmVaultCipher:
    """:class:`VaultCipher` over :class:`VaultKeys`: encrypts under the current key, decrypts
    under any configured one."""

    def __init__(self, keys: VaultKeys) -> None:
        self._current_id = keys.current_id
        self._aeads = {key_id: _aes_key(secret) for key_id, secret in keys.secrets.items()}

    def __repr__(self) -> str:
        return f"AesGcmVaultCipher(current_id={self._current_id}, ids={sorted(self._aeads)})"

    @property
    def current_id(self) -> int:
        return self._current_id

    def knows(self, key_id: int) -> bool:
        return key_id in self._aeads

    def seal(self, original: str, context: bytes) -> Sealed:
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = self._aeads[self._current_id].encrypt(nonce, original.encode("utf-8"), context)
        return Sealed(self._current_id, nonce + ciphertext)

    def open(self, sealed: Sealed, context: bytes) -> str:
        aead = self._aeads.get(sealed.key_id)
        if aead is None:
            raise VaultCipherError(
                f"vault key {sealed.key_id} is not configured (VAULT_KEY_FILE or "
                "VAULT_RETIRED_KEY_FILES): rows encrypted under it cannot be read here"
            )
        nonce, ciphertext = sealed.blob[:NONCE_BYTES], sealed.blob[NONCE_BYTES:]
        try:
            return aead.decrypt(nonce, ciphertext, context).decode("utf-8")
        except InvalidTag as error:
            raise VaultCipherError(
                f"a vault row does not decrypt under vault key {sealed.key_id}: the key file "
                "is not the one the row was encrypted with, or the row was altered"
            ) from error
