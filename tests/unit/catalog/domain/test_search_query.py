"""Filter expressions, sorts and whole queries: typed values, and errors that name the field."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from slidestream_catalog.domain.search_query import (
    DEFAULT_PAGE_SIZE,
    Op,
    SearchQueryError,
    build_query,
    parse_facets,
    parse_filter,
    parse_sort,
    resolve_field,
)
from slidestream_contracts.search import MAX_PAGE_SIZE, FieldKind


def error_of(call: object, *args: object) -> SearchQueryError:
    with pytest.raises(SearchQueryError) as caught:
        call(*args)  # type: ignore[operator]
    return caught.value


def test_a_keyword_filter_keeps_its_text() -> None:
    parsed = parse_filter("stain=H&E")
    assert (parsed.field.name, parsed.op, parsed.values) == ("stain", Op.EQ, ("H&E",))
    assert parsed.field.kind is FieldKind.KEYWORD


def test_one_of_splits_on_commas_and_trims() -> None:
    assert parse_filter("organ = colon, rectum").values == ("colon", "rectum")
    assert parse_filter("organ!=colon,rectum").op is Op.NE


@pytest.mark.parametrize(
    ("expression", "op"),
    [("width_px>=1000", Op.GE), ("width_px<=1000", Op.LE), ("width_px>1000", Op.GT)],
)
def test_the_longest_operator_wins(expression: str, op: Op) -> None:
    parsed = parse_filter(expression)
    assert (parsed.op, parsed.values) == (op, (1000.0,))


def test_the_first_operator_splits_so_values_may_hold_operator_characters() -> None:
    assert parse_filter("project=a>b=c").values == ("a>b=c",)


def test_dates_are_midnight_utc_and_instants_are_converted_to_utc() -> None:
    assert parse_filter("uploaded_at>=2025-03-01").values == (datetime(2025, 3, 1, tzinfo=UTC),)
    assert parse_filter("qc_at<2025-03-01T12:00:00+02:00").values == (
        datetime(2025, 3, 1, 10, tzinfo=UTC),
    )
    assert parse_filter("qc_at<2025-03-01T12:00:00").values == (
        datetime(2025, 3, 1, 12, tzinfo=UTC),
    )


def test_qc_and_score_families_are_numbers_with_their_parts() -> None:
    measure = parse_filter("qc.blur_fraction<0.1")
    assert (measure.field.measure, measure.field.kind) == ("blur_fraction", FieldKind.NUMBER)
    score = parse_filter("score.tumour.fraction>0.3")
    assert (score.field.model, score.field.output, score.values) == ("tumour", "fraction", (0.3,))


def test_an_unknown_field_is_named_with_close_names() -> None:
    error = error_of(parse_filter, "stian=H&E")
    assert (error.field, error.reason) == ("stian", "unknown-field")
    assert "stain" in error.message


def test_a_wrong_type_names_the_field() -> None:
    error = error_of(parse_filter, "width_px>wide")
    assert (error.field, error.reason) == ("width_px", "wrong-type")
    assert error_of(parse_filter, "uploaded_at>yesterday").reason == "wrong-type"
    assert error_of(parse_filter, "qc.blur>nan").reason == "wrong-type"


def test_keywords_have_no_order() -> None:
    error = error_of(parse_filter, "stain>H&E")
    assert (error.field, error.reason) == ("stain", "bad-operator")


@pytest.mark.parametrize("expression", ["stain", "=H&E", "stain~H&E"])
def test_an_expression_without_field_or_operator_is_refused(expression: str) -> None:
    assert error_of(parse_filter, expression).reason == "bad-filter"


def test_a_filter_without_value_is_refused() -> None:
    assert error_of(parse_filter, "stain=").reason == "missing-value"


def test_a_score_needs_model_and_output() -> None:
    assert error_of(resolve_field, "score.tumour").reason == "bad-field"


def test_sort_direction_and_default() -> None:
    assert (parse_sort("-width_px").field.name, parse_sort("-width_px").descending) == (
        "width_px",
        True,
    )
    assert parse_sort(None).canonical() == "-uploaded_at"
    assert parse_sort("stain").descending is False


def test_sort_only_on_slide_columns() -> None:
    assert error_of(parse_sort, "qc.blur").reason == "bad-sort"
    assert error_of(parse_sort, "model").reason == "bad-sort"


def test_facets_are_keywords_including_model() -> None:
    assert parse_facets(["stain", "model", "stain"]) == ("stain", "model")
    error = error_of(parse_facets, ["width_px"])
    assert (error.field, error.reason) == ("width_px", "not-facetable")


def test_a_whole_query_and_its_limits() -> None:
    query = build_query(text="  colon  ", filters=["stain=H&E"], facets=["organ"])
    assert (query.text, query.limit, query.facets) == ("colon", DEFAULT_PAGE_SIZE, ("organ",))
    assert error_of(lambda: build_query(limit=MAX_PAGE_SIZE + 1)).field == "limit"
    assert error_of(lambda: build_query(limit=0)).field == "limit"
    assert error_of(lambda: build_query(text="x" * 501)).field == "q"
