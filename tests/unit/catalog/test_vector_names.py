"""Names the Milvus adapter builds: row ids, collection names, filter literals, nlist."""

from __future__ import annotations

import pytest

from slidestream_catalog.adapters.vectors import (
    IndexKey,
    collection_name,
    nlist_for,
    row_id,
    scope_filter,
    string_literal,
)


def test_row_ids_are_deterministic_per_slide_generation_kind_and_number() -> None:
    assert row_id("s1", 3, "tile", 7) == "s1:3:tile:7"
    assert row_id("s1", 4, "tile", 7) != row_id("s1", 3, "tile", 7)


def test_collection_names_are_milvus_safe_and_carry_the_dimension() -> None:
    assert collection_name(IndexKey("tile-embedding", "1", 64)) == "vec_tile_embedding_1_d64"


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        ("tenant-a", '"tenant-a"'),
        ('a" || tenant != "b', '"a\\" || tenant != \\"b"'),
        ("back\\slash", '"back\\\\slash"'),
    ],
)
def test_string_literals_escape_quotes_and_backslashes(value: str, literal: str) -> None:
    assert string_literal(value) == literal


def test_control_characters_are_refused() -> None:
    with pytest.raises(ValueError, match="control character"):
        string_literal("a\nb")


def test_scope_filter_names_tenant_generation_and_kind() -> None:
    assert scope_filter("t", 2, "tile") == 'tenant == "t" && generation == 2 && kind == "tile"'


@pytest.mark.parametrize(("rows", "nlist"), [(0, 16), (10_000, 400), (1_000_000, 4000)])
def test_nlist_grows_with_the_square_root_of_rows(rows: int, nlist: int) -> None:
    assert nlist_for(rows) == nlist
