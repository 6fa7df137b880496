"""Cohort queries on SQLite with rows written straight into the search tables: filters of every
kind, free text, facets, keyset pages, the live generation, and one tenant never seeing another."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from slidestream_catalog.adapters.search_reader import SearchTimeoutError, SqlSlideSearch
from slidestream_catalog.domain.search_query import SearchQueryError, build_query
from slidestream_contracts.search import SEARCH_FIELDS, FacetCount
from tests.support.search import Slide, add_slides, set_live, sqlite_engine

DAY0 = datetime(2025, 1, 1, tzinfo=UTC)


def slide(tenant: str, number: int, **columns: object) -> Slide:
    base = {
        "stain": "H&E" if number % 2 == 0 else "IHC",
        "organ": ["colon", "lung", "breast"][number % 3],
        "scanner_vendor": "aperio" if number % 4 < 2 else "hamamatsu",
        "qc_verdict": "pass" if number % 5 else "fail",
        "width_px": 1000 * (number + 1),
        "uploaded_at": DAY0 + timedelta(days=number),
        "text": f"case {number} {['adenoma', 'carcinoma', 'normal'][number % 3]} biopsy",
    }
    return Slide(
        tenant,
        base | columns,
        qc={"blur_fraction": number / 100, "tissue_fraction": 0.5},
        scores={"tumour": {"fraction": number / 20}} if number % 2 == 0 else {},
    )


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = sqlite_engine(tmp_path)
    # Two tenants with identical content: every answer must differ only by tenant.
    add_slides(engine, [slide(tenant, n) for tenant in ("alpha", "beta") for n in range(20)])
    yield engine
    engine.dispose()


@pytest.fixture
def search(engine: Engine) -> SqlSlideSearch:
    return SqlSlideSearch(engine, statement_timeout_ms=5_000)


def numbers(page_items: object) -> list[int]:
    return [int(hit.fields["width_px"]) // 1000 - 1 for hit in page_items]  # type: ignore[attr-defined]


def test_a_cohort_query_combines_keyword_number_score_and_date_filters(
    search: SqlSlideSearch,
) -> None:
    query = build_query(
        filters=[
            "stain=H&E",
            "organ=colon,lung",
            "qc_verdict=pass",
            "score.tumour.fraction>0.3",
            "uploaded_at<2025-01-19",
        ],
        sort="width_px",
    )
    page = search.search("alpha", query, None)
    # even (H&E), organ colon/lung (n%3 != 2), not n%5 == 0, n/20 > 0.3 (n >= 7), day < 18
    assert numbers(page.items) == [12, 16]
    assert page.total == 2


def test_qc_measures_and_model_filters(search: SqlSlideSearch) -> None:
    measured = search.search("alpha", build_query(filters=["qc.blur_fraction>=0.18"]), None)
    assert sorted(numbers(measured.items)) == [18, 19]
    no_model = search.search("alpha", build_query(filters=["model!=tumour"], limit=100), None)
    assert all(n % 2 == 1 for n in numbers(no_model.items))
    assert no_model.total == 10


def test_not_equal_keeps_slides_without_a_value(engine: Engine, search: SqlSlideSearch) -> None:
    add_slides(engine, [Slide("alpha", {"uploaded_at": DAY0, "stain": None})])
    page = search.search("alpha", build_query(filters=["stain!=H&E"], limit=100), None)
    assert page.total == 11


def test_a_hit_has_every_field_its_measures_and_scores(search: SqlSlideSearch) -> None:
    page = search.search("alpha", build_query(filters=["width_px=3000"]), None)
    (hit,) = page.items
    assert set(hit.fields) == set(SEARCH_FIELDS)
    assert hit.fields["uploaded_at"] == DAY0 + timedelta(days=2)
    assert hit.fields["model"] == "tumour"
    assert hit.qc == {"blur_fraction": 0.02, "tissue_fraction": 0.5}
    assert hit.scores == {"tumour": {"fraction": 0.1}}


def test_free_text_matches_words_and_cannot_inject_fts_syntax(search: SqlSlideSearch) -> None:
    page = search.search("alpha", build_query(text="carcinoma biopsy", limit=100), None)
    assert sorted(numbers(page.items)) == [n for n in range(20) if n % 3 == 1]
    for hostile in ['carcinoma" OR "normal', "NEAR(case biopsy)", "text:case", "*", '"']:
        assert search.search("alpha", build_query(text=hostile), None).total in (0, 7)


def test_facets_count_within_the_filters_with_none_for_missing(
    engine: Engine, search: SqlSlideSearch
) -> None:
    add_slides(engine, [Slide("alpha", {"uploaded_at": DAY0, "organ": "colon"})])
    page = search.search(
        "alpha",
        build_query(filters=["organ=colon"], facets=["stain", "qc_verdict", "model"], limit=1),
        None,
    )
    assert page.total == 8
    assert page.facets["stain"] == (
        FacetCount(value="H&E", count=4),
        FacetCount(value="IHC", count=3),
        FacetCount(value=None, count=1),
    )
    assert sum(f.count for f in page.facets["qc_verdict"]) == 8
    assert set(page.facets["model"]) == {
        FacetCount(value="tumour", count=4),
        FacetCount(value=None, count=4),
    }


def test_a_model_filter_with_the_model_facet(search: SqlSlideSearch) -> None:
    query = build_query(filters=["model=tumour", "qc.blur_fraction<0.1"], facets=["model"])
    page = search.search("alpha", query, None)
    assert page.total == 5
    assert page.facets["model"] == (FacetCount(value="tumour", count=5),)


def test_keyset_pages_cover_every_row_once_in_order(search: SqlSlideSearch) -> None:
    for sort in ("-uploaded_at", "width_px", "stain", "-qc_verdict"):
        query = build_query(sort=sort, limit=3)
        seen, cursor = [], None
        while True:
            page = search.search("alpha", query, cursor)
            seen += [hit.slide_id for hit in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert len(seen) == len(set(seen)) == 20, sort
    dates = [
        hit.fields["uploaded_at"]
        for hit in search.search("alpha", build_query(limit=20), None).items
    ]
    assert dates == sorted(dates, reverse=True)  # type: ignore[type-var]


def test_null_sorts_as_the_smallest_value_and_pages_walk_through_it(
    engine: Engine, search: SqlSlideSearch
) -> None:
    add_slides(engine, [Slide("alpha", {"width_px": None}) for _ in range(4)])
    for sort in ("width_px", "-width_px"):
        query, seen, cursor = build_query(sort=sort, limit=5), [], None
        while True:
            page = search.search("alpha", query, cursor)
            seen += [hit.fields["width_px"] for hit in page.items]
            if (cursor := page.next_cursor) is None:
                break
        nulls = seen[-4:] if sort.startswith("-") else seen[:4]
        assert nulls == [None] * 4 and seen.count(None) == 4, sort


def test_a_cursor_of_another_query_is_refused(search: SqlSlideSearch) -> None:
    first = search.search("alpha", build_query(limit=2), None)
    with pytest.raises(SearchQueryError):
        search.search("alpha", build_query(filters=["stain=IHC"], limit=2), first.next_cursor)


def test_only_the_live_generation_answers(engine: Engine, search: SqlSlideSearch) -> None:
    add_slides(engine, [slide("alpha", 100)], generation=2)
    assert search.search("alpha", build_query(), None).total == 20
    set_live(engine, 2)
    page = search.search("alpha", build_query(), None)
    assert (page.total, numbers(page.items)) == (1, [100])


def test_tenants_with_identical_slides_see_only_their_own(search: SqlSlideSearch) -> None:
    query = build_query(filters=["stain=H&E"], facets=["organ", "model"], limit=500)
    alpha, beta = search.search("alpha", query, None), search.search("beta", query, None)
    assert alpha.total == beta.total == 10
    assert alpha.facets == beta.facets
    assert {h.slide_id for h in alpha.items}.isdisjoint({h.slide_id for h in beta.items})
    assert search.search("gamma", query, None).total == 0
    assert search.search("gamma", query, None).facets["organ"] == ()


def test_rows_after_pages_an_export(search: SqlSlideSearch) -> None:
    query = build_query(limit=7)
    hits, position = search.rows_after("beta", query, None, 7)
    total = list(hits)
    while position is not None:
        hits, position = search.rows_after("beta", query, position, 7)
        total += hits
    assert len({hit.slide_id for hit in total}) == 20


def test_tenant_fields_list_only_the_tenants_measures_and_scores(
    engine: Engine, search: SqlSlideSearch
) -> None:
    add_slides(engine, [Slide("gamma", {}, qc={"pen_marks": 1.0}, scores={"m": {"o": 1.0}})])
    alpha = search.tenant_fields("alpha")
    assert (alpha.measures, alpha.scores) == (
        ("blur_fraction", "tissue_fraction"),
        ("tumour.fraction",),
    )
    gamma = search.tenant_fields("gamma")
    assert (gamma.measures, gamma.scores) == (("pen_marks",), ("m.o",))


def test_a_query_past_its_deadline_is_cancelled(engine: Engine) -> None:
    add_slides(engine, [slide("alpha", n) for n in range(20, 2000)])
    impatient = SqlSlideSearch(engine, statement_timeout_ms=1)
    slow = build_query(filters=["score.tumour.fraction>0", "qc.blur_fraction>0"], facets=["organ"])
    with pytest.raises(SearchTimeoutError):
        for _ in range(50):  # the deadline is per transaction; one of these runs past 1 ms
            impatient.search("alpha", slow, None)
