"""The search API over HTTP (in-process, SQLite, tokens resolved by a fake): shapes, 401, 400s
that name the field, export, and two tenants with identical slides on every endpoint."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from slidestream_contracts.search import SEARCH_FIELDS, SearchPage
from tests.support.search import (
    FakeTenants,
    Slide,
    add_slides,
    asgi_client,
    bearer,
    search_app,
    sqlite_engine,
)

DAY0 = datetime(2025, 1, 1, tzinfo=UTC)
ALPHA, BETA = bearer("token-alpha"), bearer("token-beta")


def slides_of(tenant: str) -> list[Slide]:
    return [
        Slide(
            tenant,
            {
                "stain": "H&E" if n % 2 == 0 else "IHC",
                "organ": "colon" if n % 3 else "lung",
                "uploaded_at": DAY0 + timedelta(hours=n),
                "text": f"slide {n} adenoma" if n % 4 == 0 else f"slide {n}",
            },
            qc={"blur_fraction": n / 100},
            scores={"tumour": {"fraction": n / 30}} if n % 2 == 0 else {},
        )
        for n in range(30)
    ]


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    engine = sqlite_engine(tmp_path)
    add_slides(engine, slides_of("alpha") + slides_of("beta"))
    app = search_app(engine, FakeTenants(), search_export_max_rows=25)
    async with asgi_client(app) as http:
        yield http
    engine.dispose()


async def test_every_endpoint_answers_401_without_a_valid_token(
    client: httpx.AsyncClient,
) -> None:
    for path in ("/v1/search", "/v1/search/fields", "/v1/search/export"):
        assert (await client.get(path)).status_code == 401
        assert (await client.get(path, headers=bearer("stolen"))).status_code == 401


async def test_a_search_page_with_facets_and_cursor(client: httpx.AsyncClient) -> None:
    params = {"filter": ["stain=H&E", "organ=colon"], "facet": ["organ", "model"], "limit": 4}
    answer = await client.get("/v1/search", params=params, headers=ALPHA)
    assert answer.status_code == 200, answer.text
    page = SearchPage.model_validate(answer.json())
    assert (page.total, len(page.items)) == (10, 4)
    assert [(f.value, f.count) for f in page.facets["organ"]] == [("colon", 10)]
    assert set(page.items[0].fields) == set(SEARCH_FIELDS)
    second = await client.get(
        "/v1/search", params=params | {"cursor": page.next_cursor}, headers=ALPHA
    )
    ids = {hit.slide_id for hit in SearchPage.model_validate(second.json()).items}
    assert len(ids) == 4 and ids.isdisjoint({hit.slide_id for hit in page.items})


async def test_free_text(client: httpx.AsyncClient) -> None:
    answer = await client.get("/v1/search", params={"q": "adenoma"}, headers=ALPHA)
    assert answer.json()["total"] == 8


@pytest.mark.parametrize(
    ("params", "field", "reason"),
    [
        ({"filter": "stian=H&E"}, "stian", "unknown-field"),
        ({"filter": "width_px>wide"}, "width_px", "wrong-type"),
        ({"filter": "stain>H&E"}, "stain", "bad-operator"),
        ({"filter": "stain"}, "filter", "bad-filter"),
        ({"facet": "width_px"}, "width_px", "not-facetable"),
        ({"sort": "-qc.blur_fraction"}, "qc.blur_fraction", "bad-sort"),
        ({"limit": 100_000}, "limit", "bad-limit"),
        ({"cursor": "garbage"}, "cursor", "bad-cursor"),
    ],
)
async def test_bad_input_is_a_400_naming_the_field(
    client: httpx.AsyncClient, params: dict[str, object], field: str, reason: str
) -> None:
    answer = await client.get("/v1/search", params=params, headers=ALPHA)  # type: ignore[arg-type]
    assert answer.status_code == 400
    body = answer.json()
    assert (body["field"], body["reason"]) == (field, reason)
    assert body["message"]


async def test_a_cursor_from_another_tenant_is_refused(client: httpx.AsyncClient) -> None:
    first = (await client.get("/v1/search", params={"limit": 2}, headers=ALPHA)).json()
    answer = await client.get(
        "/v1/search", params={"limit": 2, "cursor": first["next_cursor"]}, headers=BETA
    )
    assert (answer.status_code, answer.json()["field"]) == (400, "cursor")


async def test_fields_list_the_fixed_and_the_tenants_open_fields(
    client: httpx.AsyncClient,
) -> None:
    listed = (await client.get("/v1/search/fields", headers=ALPHA)).json()
    names = [entry["name"] for entry in listed]
    assert names[: len(SEARCH_FIELDS)] == list(SEARCH_FIELDS)
    assert names[len(SEARCH_FIELDS) :] == ["qc.blur_fraction", "score.tumour.fraction"]
    stain = next(entry for entry in listed if entry["name"] == "stain")
    assert (stain["kind"], stain["facetable"]) == ("keyword", True)


async def test_csv_export_streams_the_cohort_up_to_the_row_limit(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.get(
        "/v1/search/export", params={"format": "csv", "filter": "organ=colon"}, headers=ALPHA
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert 'filename="cohort-' in answer.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert len(rows) == 20 and answer.headers["x-total-count"] == "20"
    assert {"slide_id", "stain", "qc.blur_fraction", "score.tumour.fraction"} <= set(rows[0])
    capped = await client.get("/v1/search/export", headers=ALPHA)  # 30 rows, limit 25
    assert len(list(csv.DictReader(io.StringIO(capped.text)))) == 25
    assert capped.headers["x-export-truncated"] == "true"


async def test_jsonl_export_has_one_hit_per_line(client: httpx.AsyncClient) -> None:
    answer = await client.get(
        "/v1/search/export", params={"format": "jsonl", "filter": "stain=IHC"}, headers=BETA
    )
    lines = [json.loads(line) for line in answer.text.splitlines()]
    assert len(lines) == 15 and all(line["fields"]["stain"] == "IHC" for line in lines)


async def test_two_tenants_with_identical_slides_see_only_their_own_everywhere(
    client: httpx.AsyncClient,
) -> None:
    params = {"facet": ["stain", "organ", "model"], "limit": 500}
    alpha = (await client.get("/v1/search", params=params, headers=ALPHA)).json()
    beta = (await client.get("/v1/search", params=params, headers=BETA)).json()
    assert alpha["total"] == beta["total"] == 30
    assert alpha["facets"] == beta["facets"]
    alpha_ids = {hit["slide_id"] for hit in alpha["items"]}
    assert alpha_ids.isdisjoint(hit["slide_id"] for hit in beta["items"])
    exported = await client.get("/v1/search/export", params={"format": "jsonl"}, headers=BETA)
    assert alpha_ids.isdisjoint(json.loads(line)["slide_id"] for line in exported.text.splitlines())
    gamma = bearer("token-gamma")
    empty = (await client.get("/v1/search", params=params, headers=gamma)).json()
    assert (empty["total"], empty["items"], empty["facets"]["stain"]) == (0, [], [])
    fields = (await client.get("/v1/search/fields", headers=gamma)).json()
    assert len(fields) == len(SEARCH_FIELDS)
    assert (await client.get("/v1/search/export", headers=gamma)).text.count("\n") == 1
