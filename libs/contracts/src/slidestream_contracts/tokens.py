"""API tokens as every slidestream HTTP API reads them: ``Authorization: Bearer <token>``,
stored and compared only as SHA-256 hashes.

Tokens are 256 random bits, so a plain SHA-256 is a sufficient at-rest hash (no password
stretching is needed for secrets that cannot be guessed). The upload API's tenant tokens, the
models API's scoped tokens and the local stack that writes the models API's token file hash them
here, so a hash one of them stores the others accept.

Every comparison of a secret, or of a token's hash with a stored one, goes through
:func:`secrets_equal` (``hmac.compare_digest``): its time does not depend on where the two first
differ, so response times cannot be used to guess a secret byte by byte. A database or dict
lookup by hash may pick the candidate row; the final yes or no is still :func:`secrets_equal`'s.

Machine callers that cannot send a bearer token use HTTP Basic (:func:`basic_password`): tusd
authenticates its hooks with the user and password of the hook URL, the only credential its HTTP
client sends (Go's ``net/http`` turns URL user info into ``Authorization: Basic``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac


def token_sha256(token: str) -> str:
    """The stored form of ``token``: its SHA-256 in hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def secrets_equal(presented: str, expected: str) -> bool:
    """Whether two secrets (or hashes of secrets) are equal, in time independent of their
    content. UTF-8 first: ``compare_digest`` refuses ``str`` with non-ASCII characters, and a
    header may carry any Latin-1 text."""
    return hmac.compare_digest(presented.encode("utf-8"), expected.encode("utf-8"))


def token_matches(token: str, stored_sha256: str) -> bool:
    """Whether ``token`` is the one whose hash was stored (constant time, see above)."""
    return secrets_equal(token_sha256(token), stored_sha256)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (RFC 6750 §2.1)."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def basic_password(authorization: str | None) -> str | None:
    """The password of an ``Authorization: Basic base64(user:password)`` header (RFC 7617 §2);
    ``None`` when the header is absent or not Basic."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    _user, colon, password = decoded.partition(":")
    return password if colon else None
