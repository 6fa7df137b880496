"""Partner API tokens: shown once, stored only as a hash (``slidestream_contracts.tokens``),
scoped to one tenant."""

from __future__ import annotations

import secrets

TOKEN_PREFIX = "ssk_"  # noqa: S105 - a public prefix, not a secret
"""Makes leaked tokens recognisable to secret scanners."""
TOKEN_RANDOM_BYTES = 32


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_RANDOM_BYTES)
