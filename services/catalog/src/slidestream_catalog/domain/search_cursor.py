"""Keyset cursors: where the previous page ended, opaque to the caller.

A cursor is base64url JSON of the last row's sort value, its slide id and a hash of the query
(tenant, text, filters, sort). The next page starts strictly after that position, so pages never
repeat or skip a row while others are written (unlike OFFSET), and a cursor replayed against a
different query is rejected instead of silently starting somewhere meaningless.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Final
from uuid import UUID

from slidestream_catalog.domain.search_query import (
    SearchQuery,
    SearchQueryError,
    SearchValue,
    parse_value,
)
from slidestream_contracts.search import FieldKind

QUERY_HASH_CHARS: Final = 16
MAX_CURSOR_CHARS: Final = 2_000


@dataclass(frozen=True, slots=True)
class Cursor:
    value: SearchValue | None
    """The last row's sort value (``None``: that row had none; NULLs sort last)."""
    slide_id: UUID


def query_hash(tenant: str, query: SearchQuery) -> str:
    """What a cursor is bound to: the rows and their order (not the page size or facets)."""
    parts = [
        tenant,
        query.text,
        query.sort.canonical(),
        *sorted(f.canonical() for f in query.filters),
    ]
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
    return digest[:QUERY_HASH_CHARS]


def encode_cursor(tenant: str, query: SearchQuery, cursor: Cursor) -> str:
    value = cursor.value.isoformat() if isinstance(cursor.value, datetime) else cursor.value
    payload = {"v": value, "id": str(cursor.slide_id), "q": query_hash(tenant, query)}
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(tenant: str, query: SearchQuery, token: str) -> Cursor:
    """The position ``token`` names; :class:`SearchQueryError` on anything not made by
    :func:`encode_cursor` for this very query."""
    if len(token) > MAX_CURSOR_CHARS:
        raise _bad("too long")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        payload = json.loads(raw)
        slide_id = UUID(str(payload["id"]))
        stored_hash = payload["q"]
        value = payload["v"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise _bad("not a cursor of this API") from None
    if stored_hash != query_hash(tenant, query):
        raise _bad("it belongs to another query (same text, filters and sort are needed)")
    return Cursor(_typed(query, value), slide_id)


def _typed(query: SearchQuery, value: object) -> SearchValue | None:
    if value is None:
        return None
    ref = query.sort.field
    if ref.kind is FieldKind.NUMBER and isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return parse_value(ref, value)
        except SearchQueryError:
            raise _bad("its sort value does not match the sort field") from None
    raise _bad("its sort value does not match the sort field")


def _bad(why: str) -> SearchQueryError:
    return SearchQueryError("cursor", "bad-cursor", f"cursor: {why}")
