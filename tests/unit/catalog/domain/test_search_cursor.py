"""Keyset cursors: round trips, typed values, and refusal of anything not made for this query."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from uuid import uuid4

import pytest

from slidestream_catalog.domain.search_cursor import Cursor, decode_cursor, encode_cursor
from slidestream_catalog.domain.search_query import SearchQueryError, build_query


@pytest.mark.parametrize(
    ("sort", "value"),
    [
        ("-uploaded_at", datetime(2025, 5, 1, 8, 30, tzinfo=UTC)),
        ("width_px", 51200.0),
        ("stain", "H&E"),
        ("-stain", None),
    ],
)
def test_a_cursor_round_trips_with_its_typed_value(sort: str, value: object) -> None:
    query = build_query(filters=["organ=colon"], sort=sort)
    position = Cursor(value, uuid4())  # type: ignore[arg-type]
    token = encode_cursor("tenant-a", query, position)
    assert "=" not in token
    assert decode_cursor("tenant-a", query, token) == position


def test_page_size_and_facets_do_not_change_the_query_a_cursor_belongs_to() -> None:
    query = build_query(filters=["organ=colon", "stain=H&E"], limit=10)
    token = encode_cursor("t", query, Cursor(None, uuid4()))
    same = build_query(filters=["stain=H&E", "organ=colon"], facets=["stain"], limit=100)
    assert decode_cursor("t", same, token).value is None


@pytest.mark.parametrize(
    "other",
    [
        build_query(filters=["organ=rectum"]),
        build_query(filters=["organ=colon"], sort="width_px"),
        build_query(text="adenoma", filters=["organ=colon"]),
    ],
)
def test_a_cursor_of_another_query_is_refused(other: object) -> None:
    token = encode_cursor("t", build_query(filters=["organ=colon"]), Cursor(None, uuid4()))
    with pytest.raises(SearchQueryError) as caught:
        decode_cursor("t", other, token)  # type: ignore[arg-type]
    assert (caught.value.field, caught.value.reason) == ("cursor", "bad-cursor")


def test_a_cursor_of_another_tenant_is_refused() -> None:
    query = build_query()
    token = encode_cursor("tenant-a", query, Cursor(None, uuid4()))
    with pytest.raises(SearchQueryError):
        decode_cursor("tenant-b", query, token)


@pytest.mark.parametrize(
    "token",
    [
        "not base64 !",
        base64.urlsafe_b64encode(b"[1,2]").decode(),
        base64.urlsafe_b64encode(json.dumps({"v": 1, "id": "x", "q": "y"}).encode()).decode(),
        "A" * 5000,
    ],
)
def test_garbage_is_a_bad_cursor(token: str) -> None:
    with pytest.raises(SearchQueryError) as caught:
        decode_cursor("t", build_query(), token)
    assert caught.value.field == "cursor"


def test_a_sort_value_of_the_wrong_type_is_refused() -> None:
    query = build_query(sort="-uploaded_at")
    token = encode_cursor("t", query, Cursor("not a date", uuid4()))
    with pytest.raises(SearchQueryError):
        decode_cursor("t", query, token)
