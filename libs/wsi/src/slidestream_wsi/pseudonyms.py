"""Keyed pseudonyms, UID remapping and date shifts, all deterministic under one versioned key.

A pseudonym is HMAC-SHA256 (RFC 2104, FIPS 198-1) over the tenant, the role of the identifier
(``case``, ``specimen``, ``patient``...) and the original identifier, under a secret key that
carries a version. The same input under the same key version always gives the same pseudonym, so
re-processing a slide is idempotent; rotating the key (a new version) gives unrelated pseudonyms,
and the version in the pseudonym says which key made it. Without the key a pseudonym cannot be
linked back to its identifier, nor recomputed from a guess.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass, field

MIN_KEY_BYTES = 32
"""Shortest accepted secret: 256 bits, the output size of SHA-256 (RFC 2104 §3)."""

PSEUDONYM_DIGEST_CHARS = 20
"""Base32 characters kept from the digest: 100 bits, collision-free at any realistic scale."""

MIN_FITTED_DIGEST_CHARS = 12
"""Fewest digest characters a shortened pseudonym keeps: 60 bits, so that even a tenant with ten
million cases has a chance below 1e-4 of two sharing a 16-character Accession Number."""

MAX_DATE_SHIFT_DAYS = 3650
"""Largest backwards shift of dates under the longitudinal-temporal option, in days."""

_DOMAIN_PSEUDONYM = b"slidestream/pseudonym/v1"
_DOMAIN_UID = b"slidestream/dicom-uid/v1"
_DOMAIN_DATE_SHIFT = b"slidestream/date-shift/v1"


@dataclass(frozen=True, slots=True)
class PseudonymKey:
    """A versioned HMAC secret. The secret never appears in ``repr``."""

    version: int
    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if self.version < 1:
            raise ValueError("key version must be >= 1")
        if len(self.secret) < MIN_KEY_BYTES:
            raise ValueError(f"pseudonym key must be at least {MIN_KEY_BYTES} bytes")


def _mac(key: PseudonymKey, domain: bytes, *parts: str) -> bytes:
    # Length-prefix every part so ("ab", "c") and ("a", "bc") never collide.
    message = bytearray(domain)
    message += key.version.to_bytes(4, "big")
    for part in parts:
        encoded = part.encode("utf-8")
        message += len(encoded).to_bytes(4, "big") + encoded
    return hmac.new(key.secret, bytes(message), hashlib.sha256).digest()


def pseudonym(key: PseudonymKey, tenant: str, role: str, original_id: str) -> str:
    """``PSN-<key version>-<20 base32 characters>`` for one identifier of one tenant."""
    digest = _mac(key, _DOMAIN_PSEUDONYM, tenant, role, original_id)
    encoded = base64.b32encode(digest).decode("ascii").rstrip("=")
    return f"PSN-{key.version}-{encoded[:PSEUDONYM_DIGEST_CHARS]}"


def fit_pseudonym(full: str, max_chars: int) -> str:
    """``full`` shortened to at most ``max_chars`` by the one rule every writer uses.

    ``PSN-<version>-<digest>`` becomes ``<version>-<digest prefix>``: the key version survives
    and the result is a prefix of the full pseudonym's tail, so people can match the two, and
    the same pseudonym always gives the same short form. Raises ``ValueError`` for a limit that
    would leave fewer than :data:`MIN_FITTED_DIGEST_CHARS` of the digest, or for a value that is
    not a pseudonym.
    """
    if len(full) <= max_chars:
        return full
    prefix, version, digest = [*full.split("-", 2), "", ""][:3]
    if prefix != "PSN" or not version.isdigit() or not digest:
        raise ValueError("not a pseudonym (PSN-<version>-<digest>)")
    kept = max_chars - len(version) - 1
    if kept < MIN_FITTED_DIGEST_CHARS:
        raise ValueError(
            f"{max_chars} characters leave {kept} of a pseudonym's digest "
            f"(at least {MIN_FITTED_DIGEST_CHARS} are kept)"
        )
    return f"{version}-{digest[:kept]}"


def remap_uid(key: PseudonymKey, tenant: str, original_uid: str) -> str:
    """A new DICOM UID for an original one: ``2.25.<decimal of a 128-bit UUID>``.

    PS3.5 §B.2 allows UIDs under ``2.25`` built from a UUID (ITU-T X.667); the UUID here is the
    keyed digest with RFC 9562 version 8 (custom) and variant bits set, so the mapping is stable
    for a tenant and key version and unlinkable without the key.
    """
    raw = bytearray(_mac(key, _DOMAIN_UID, tenant, original_uid)[:16])
    raw[6] = (raw[6] & 0x0F) | 0x80  # version 8
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122/9562 variant
    return "2.25." + str(int.from_bytes(bytes(raw), "big"))


def date_shift_days(key: PseudonymKey, tenant: str, subject: str) -> int:
    """A stable backwards shift in days (1..MAX_DATE_SHIFT_DAYS) for one subject's dates."""
    digest = _mac(key, _DOMAIN_DATE_SHIFT, tenant, subject)
    return -(1 + int.from_bytes(digest[:8], "big") % MAX_DATE_SHIFT_DAYS)
