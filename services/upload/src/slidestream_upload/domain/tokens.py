"""Partner API tokens: shown once, stored only as a hash, scoped to one tenant.

Tokens are 256 random bits, so a plain SHA-256 is a sufficient at-rest hash (no password
stretching is needed for secrets that cannot be guessed); comparison is by hash lookup.
"""

from __future__ import annotations

import hashlib
import secrets

TOKEN_PREFIX = "ssk_"  # noqa: S105 - a public prefix, not a secret
"""Makes leaked tokens recognisable to secret scanners."""
TOKEN_RANDOM_BYTES = 32


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_RANDOM_BYTES)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (RFC 6750 §2.1)."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()
