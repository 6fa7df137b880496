"""Partner API tokens: shown once, stored only as a hash (``slidestream_contracts.tokens``),
scoped to one tenant, optionally ending at an expiry.

Lifetimes: a token without ``expires_at`` (every token issued before expiry existed, and any
issued without ``--expires-in``) never expires; it ends only when revoked. Rotation issues a
successor for the same tenant and label and cuts the old token's life to a grace period, so a
partner can switch without a window where neither token works.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from slidestream_upload.domain.admission import Refusal

TOKEN_PREFIX = "ssk_"  # noqa: S105 - a public prefix, not a secret
"""Makes leaked tokens recognisable to secret scanners."""
TOKEN_RANDOM_BYTES = 32

UNKNOWN_TOKEN = Refusal(401, "unauthorized", "missing, unknown or revoked token")

_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}
_DURATION_PART = re.compile(r"(\d+)([smhdw])")


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_RANDOM_BYTES)


def parse_duration(text: str) -> timedelta:
    """``90d``, ``24h``, ``1d12h``, ``30m``, ``45s``, ``2w`` (or ``0``) as a ``timedelta``;
    ``ValueError`` for anything else."""
    compact = text.strip().lower()
    if compact == "0":
        return timedelta(0)
    parts = _DURATION_PART.findall(compact)
    if not parts or "".join(number + unit for number, unit in parts) != compact:
        raise ValueError(f"not a duration: {text!r} (use e.g. 90d, 24h, 1d12h, 30m, 45s)")
    return timedelta(seconds=sum(int(number) * _DURATION_UNITS[unit] for number, unit in parts))


def as_utc(moment: datetime) -> datetime:
    """SQLite hands timestamps back without their zone; every one we store is UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def token_refusal(
    *, revoked_at: datetime | None, expires_at: datetime | None, now: datetime
) -> Refusal | None:
    """``None`` when a stored token may be used at ``now``; otherwise the 401 to answer.

    Revoked tokens answer like unknown ones; an expired token says so (and when), so a partner
    knows to ask for a new one rather than to check what they typed.
    """
    if revoked_at is not None:
        return UNKNOWN_TOKEN
    if expires_at is not None and as_utc(expires_at) <= now:
        ended = as_utc(expires_at).strftime("%Y-%m-%dT%H:%M:%SZ")
        return Refusal(
            401,
            "token-expired",
            f"the token expired at {ended}; ask your slidestream operator for a new one",
        )
    return None


@dataclass(frozen=True, slots=True)
class Rotation:
    """When the old token ends and the new one expires."""

    old_expires_at: datetime
    new_expires_at: datetime | None


def plan_rotation(
    *,
    created_at: datetime,
    expires_at: datetime | None,
    grace: timedelta,
    now: datetime,
    expires_in: timedelta | None = None,
) -> Rotation:
    """The old token lives ``grace`` longer (never longer than it would have); the new one gets
    ``expires_in`` or, by default, the old token's whole lifetime again (none if it had none)."""
    if grace < timedelta(0):
        raise ValueError("the grace period cannot be negative")
    old_end = now + grace
    if expires_at is not None:
        old_end = min(old_end, as_utc(expires_at))
    if expires_in is None and expires_at is not None:
        expires_in = as_utc(expires_at) - as_utc(created_at)
    return Rotation(
        old_expires_at=old_end,
        new_expires_at=now + expires_in if expires_in is not None else None,
    )
