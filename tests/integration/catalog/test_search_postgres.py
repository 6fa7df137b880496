"""Metadata search on the real PostgreSQL: the catalog service as a process on a throwaway schema,
two real tenants (tokens made by the upload API) with identical slides, queried over HTTP."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import httpx
import pytest
from sqlalchemy import Engine

from slidestream_catalog.adapters.search_reader import SearchTimeoutError, SqlSlideSearch
from slidestream_catalog.domain.search_query import build_query
from slidestream_contracts.search import SearchPage
from tests.support.inference_stack import create_tenant
from tests.support.search import Slide, add_slides, bearer, drop_schema, postgres_engine
from tests.support.upload import free_port

pytestmark = pytest.mark.integration

READY_TIMEOUT_S = 60.0
DAY0 = datetime(2025, 1, 1, tzinfo=UTC)


def slides_of(tenant: str, count: int = 40) -> list[Slide]:
    return [
        Slide(
            tenant,
            {
                "stain": "H&E" if n % 2 == 0 else "IHC",
                "organ": "colon" if n % 3 else "lung",
                "scanner_vendor": "aperio" if n % 4 < 2 else None,
                "uploaded_at": DAY0 + timedelta(hours=n),
                "width_px": 1000 + n,
                "text": f"slide {n} tubular adenoma" if n % 4 == 0 else f"slide {n} normal",
            },
            qc={"blur_fraction": n / 100},
            scores={"tumour": {"fraction": n / count}} if n % 2 == 0 else {},
        )
        for n in range(count)
    ]


@pytest.fixture(scope="module")
def tenants(stack_env: dict[str, str]) -> dict[str, str]:
    """Two real tenants: name → token."""
    return dict(create_tenant("search") for _ in range(2))


@pytest.fixture(scope="module")
def schema_engine(stack_env: dict[str, str]) -> Iterator[tuple[str, Engine]]:
    if "POSTGRES_URL" not in stack_env:
        pytest.fail("the local stack has no PostgreSQL; `make setup` installs it")
    schema = f"search_test_{uuid4().hex[:10]}"
    engine = postgres_engine(stack_env["POSTGRES_URL"], schema)
    try:
        yield schema, engine
    finally:
        drop_schema(engine, schema)


@pytest.fixture(scope="module")
def catalog(
    stack_env: dict[str, str],
    schema_engine: tuple[str, Engine],
    tenants: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    schema, engine = schema_engine
    add_slides(engine, [slide for name in tenants for slide in slides_of(name)])
    port = free_port()
    env = os.environ.copy()  # noqa: TID251 - building a child process environment
    env.update(
        SERVICE_NAME=schema,  # the service's schema is the throwaway one
        KAFKA_BOOTSTRAP=stack_env["KAFKA_BOOTSTRAP"],
        DATABASE_URL=stack_env["POSTGRES_URL"],
        UPLOAD_API_URL=stack_env["UPLOAD_API"],
        HTTP_PORT=str(port),
        DATA_DIR=str(tmp_path_factory.mktemp("catalog")),
        LOG_JSON="true",
    )
    log_path = Path(env["DATA_DIR"]) / "catalog.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "slidestream_catalog.main"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        asyncio.run(wait_ready(base_url, process))
        yield base_url
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)


async def wait_ready(base_url: str, process: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient(base_url=base_url) as client:
        for _ in range(int(READY_TIMEOUT_S / 0.2)):
            assert process.poll() is None, "catalog exited during start"
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError("catalog never became ready")


def get(base_url: str, path: str, token: str | None, **params: object) -> httpx.Response:
    headers = bearer(token) if token else {}
    return httpx.get(base_url + path, params=params, headers=headers, timeout=30)  # type: ignore[arg-type]


def test_search_with_filters_full_text_facets_and_pages(
    catalog: str, tenants: dict[str, str]
) -> None:
    token = next(iter(tenants.values()))
    params = {"filter": ["stain=H&E", "score.tumour.fraction>0.25"], "facet": ["organ", "model"]}
    first = SearchPage.model_validate(get(catalog, "/v1/search", token, **params, limit=5).json())
    # even n with n/40 > 0.25: n = 12, 14, ... 38
    assert (first.total, len(first.items)) == (14, 5)
    assert sum(f.count for f in first.facets["organ"]) == 14
    seen = {hit.slide_id for hit in first.items}
    cursor = first.next_cursor
    while cursor:
        page = SearchPage.model_validate(
            get(catalog, "/v1/search", token, **params, limit=5, cursor=cursor).json()
        )
        seen |= {hit.slide_id for hit in page.items}
        cursor = page.next_cursor
    assert len(seen) == 14
    words = get(catalog, "/v1/search", token, q="tubular adenoma").json()
    assert words["total"] == 10
    hostile = get(catalog, "/v1/search", token, q='adenoma" OR (normal & !')
    assert hostile.status_code == 200


def test_bad_input_names_the_field(catalog: str, tenants: dict[str, str]) -> None:
    token = next(iter(tenants.values()))
    answer = get(catalog, "/v1/search", token, filter="scanner_vendr=aperio")
    assert answer.status_code == 400
    assert answer.json()["field"] == "scanner_vendr"
    assert get(catalog, "/v1/search", None).status_code == 401


def test_two_real_tenants_see_only_their_own_on_every_endpoint(
    catalog: str, tenants: dict[str, str]
) -> None:
    (alpha_name, alpha), (_, beta) = tenants.items()
    params = {"facet": ["stain", "scanner_vendor", "model"], "limit": 500}
    a, b = (get(catalog, "/v1/search", t, **params).json() for t in (alpha, beta))
    assert a["total"] == b["total"] == 40
    assert a["facets"] == b["facets"]
    assert {h["slide_id"] for h in a["items"]}.isdisjoint(h["slide_id"] for h in b["items"])
    vendors = {f["value"]: f["count"] for f in a["facets"]["scanner_vendor"]}
    assert vendors == {"aperio": 20, None: 20}
    assert (
        get(catalog, "/v1/search/fields", alpha).json()
        == get(catalog, "/v1/search/fields", beta).json()
    )
    exported = list(csv.DictReader(io.StringIO(get(catalog, "/v1/search/export", beta).text)))
    assert len(exported) == 40
    assert {row["slide_id"] for row in exported}.isdisjoint(h["slide_id"] for h in a["items"])
    assert alpha_name not in get(catalog, "/v1/search/export", beta).text


def test_a_query_past_the_statement_timeout_is_cancelled(
    schema_engine: tuple[str, Engine],
) -> None:
    _, engine = schema_engine
    name = "timeout-tenant"  # rows of its own, so the other tests' counts stay as they are
    add_slides(engine, [Slide(name, {"uploaded_at": DAY0}, qc={"q": 1.0}) for _ in range(20_000)])
    impatient = SqlSlideSearch(engine, statement_timeout_ms=1)
    query = build_query(text="adenoma", filters=["qc.q>0"], facets=["stain", "organ", "model"])
    with pytest.raises(SearchTimeoutError):
        for _ in range(20):
            impatient.search(name, query, None)
