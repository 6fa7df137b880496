"""SearchClient against the in-memory search API (``httpx.MockTransport``)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from slidestream_client.errors import (
    ApiConnectionError,
    AuthenticationError,
    NotFoundError,
    SearchRefusedError,
    ServiceUnavailableError,
)
from slidestream_client.search_client import RowCounter, SearchClient
from slidestream_contracts.search import FieldKind, Region
from tests.support.search_api_fake import MODEL, SEARCH_API, TOKEN, FakeSearchApi, slide_rows


def connect(api: FakeSearchApi, token: str = TOKEN) -> SearchClient:
    return SearchClient(SEARCH_API, token, transport=api.transport())


def test_search_sends_every_parameter_and_reads_the_page(search_api: FakeSearchApi) -> None:
    search_api.slides = slide_rows(8)
    with connect(search_api) as client:
        page = client.search(
            "colon",
            filters=["stain=H&E", "organ=colon,lung"],
            facets=["stain", "organ"],
            sort="-uploaded_at",
            limit=2,
        )
    assert search_api.queries() == [
        [
            ("filter", "stain=H&E"),
            ("filter", "organ=colon,lung"),
            ("facet", "stain"),
            ("facet", "organ"),
            ("q", "colon"),
            ("sort", "-uploaded_at"),
            ("limit", "2"),
        ]
    ]
    # slides 0 and 2 of 8 are H&E colon (the first half); sorted newest first
    assert [str(hit.slide_id)[-1] for hit in page.items] == ["3", "1"]
    assert page.total == 2
    assert [(c.value, c.count) for c in page.facets["stain"]] == [("H&E", 2)]
    assert page.items[0].fields["stain"] == "H&E"


def test_iter_hits_follows_every_cursor(search_api: FakeSearchApi) -> None:
    search_api.slides = slide_rows(7)
    with connect(search_api) as client:
        hits = list(client.iter_hits(limit=3))
    assert [str(hit.slide_id) for hit in hits] == [row["slide_id"] for row in search_api.slides]
    cursors = [dict(query).get("cursor") for query in search_api.queries()]
    assert cursors == [None, "3", "6"]


def test_iter_pages_asks_facets_once(search_api: FakeSearchApi) -> None:
    with connect(search_api) as client:
        pages = list(client.iter_pages(facets=["organ"], limit=2))
    assert [bool(page.facets) for page in pages] == [True, False, False]
    assert [("facet", "organ") in query for query in search_api.queries()] == [True, False, False]


@pytest.mark.parametrize("export_format", ["csv", "jsonl"])
def test_export_streams_the_cohort_to_a_file(
    search_api: FakeSearchApi, tmp_path: Path, export_format: str
) -> None:
    destination = tmp_path / f"cohort.{export_format}"
    seen: list[tuple[int, int]] = []
    with connect(search_api) as client:
        result = client.export(
            filters=["qc_verdict=pass"],
            format="csv" if export_format == "csv" else "jsonl",
            destination=destination,
            on_progress=lambda rows, size: seen.append((rows, size)),
        )
    body = search_api.export_body(export_format)
    assert destination.read_bytes() == body
    assert (result.path, result.rows, result.size_bytes) == (destination, 5, len(body))
    assert len(seen) > 1  # one report per chunk, not one at the end
    assert seen[-1] == (5, len(body))
    assert list(tmp_path.iterdir()) == [destination]  # the .part file is gone
    query = dict(search_api.queries("/v1/search/export")[0])
    assert query == {"filter": "qc_verdict=pass", "format": export_format}


def test_refused_export_leaves_no_file(search_api: FakeSearchApi, tmp_path: Path) -> None:
    destination = tmp_path / "cohort.csv"
    with connect(search_api) as client, pytest.raises(SearchRefusedError) as caught:
        client.export(filters=["colour=red"], destination=destination)
    assert caught.value.field == "filter"
    assert list(tmp_path.iterdir()) == []


def test_row_counter_counts_records_not_lines() -> None:
    csv_counter = RowCounter("csv")
    for chunk in (b'id,description\n1,"two\nli', b'nes, ""quoted"""\n2,plain\n3,no newline'):
        csv_counter.feed(chunk)
    assert csv_counter.rows == 3
    jsonl = RowCounter("jsonl")
    for chunk in (b'{"a": "x\\ny"}\n{"a"', b": 2}\n"):
        jsonl.feed(chunk)
    assert jsonl.rows == 2
    assert RowCounter("csv").rows == 0


def test_fields_lists_kinds(search_api: FakeSearchApi) -> None:
    with connect(search_api) as client:
        fields = {field.name: field for field in client.fields()}
    assert fields["stain"].kind is FieldKind.KEYWORD and fields["stain"].facetable
    assert fields["mpp_um"].kind is FieldKind.NUMBER and not fields["mpp_um"].facetable


def test_similar_sends_the_region_and_reads_the_hits(search_api: FakeSearchApi) -> None:
    slide_id = search_api.slides[0]["slide_id"]
    region = Region(x=10, y=20, width=512, height=256, level=2)
    with connect(search_api) as client:
        page = client.similar(str(slide_id), region=region, model=MODEL, k=3)
        crop = client.crop_url(page.items[1])
    assert search_api.similar_bodies == [
        {
            "slide_id": slide_id,
            "region": {"x": 10, "y": 20, "width": 512, "height": 256, "level": 2},
            "model": MODEL,
            "k": 3,
            "include_same_slide": False,
        }
    ]
    assert (page.model, page.model_version, len(page.items)) == (MODEL, "1", 3)
    assert page.items[0].distance < page.items[1].distance
    assert crop.startswith(f"{SEARCH_API}/v1/similar/crop/")


def test_similar_patch_uploads_the_image(search_api: FakeSearchApi, tmp_path: Path) -> None:
    image = tmp_path / "patch.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with connect(search_api) as client:
        page = client.similar_patch(image, model=MODEL, k=2)
    assert len(page.items) == 2
    assert search_api.patches == [{"k": b"2", "model": MODEL.encode(), "image": image.read_bytes()}]


def test_refusals_name_the_field(search_api: FakeSearchApi) -> None:
    with connect(search_api) as client:
        with pytest.raises(SearchRefusedError) as refused:
            client.search(sort="colour")
        with pytest.raises(SearchRefusedError) as unknown_model:
            client.similar(str(search_api.slides[0]["slide_id"]), model="other")
        with pytest.raises(NotFoundError) as missing:
            client.similar("00000000-0000-0000-0000-0000000000ff")
    assert (refused.value.status_code, refused.value.field) == (400, "sort")
    assert refused.value.message == "cannot sort on 'colour'"
    assert (unknown_model.value.status_code, unknown_model.value.field) == (422, "model")
    assert missing.value.field == "slide_id"


def test_token_and_availability_errors(search_api: FakeSearchApi) -> None:
    with connect(search_api, token="wrong") as client, pytest.raises(AuthenticationError) as auth:
        client.search()
    assert auth.value.message == "the server refused the token: unknown token"
    search_api.unavailable = True
    with connect(search_api) as client, pytest.raises(ServiceUnavailableError):
        client.fields()


def test_unreachable_server_and_repr() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client = SearchClient(SEARCH_API, TOKEN, transport=httpx.MockTransport(refuse))
    with client, pytest.raises(ApiConnectionError):
        client.search("colon")
    assert TOKEN not in repr(client)


def test_framework_validation_errors_name_the_parameter() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        problem = {"type": "less_than_equal", "loc": ["query", "limit"], "msg": "at most 500"}
        return httpx.Response(422, json={"detail": [problem]})

    client = SearchClient(SEARCH_API, TOKEN, transport=httpx.MockTransport(answer))
    with client, pytest.raises(SearchRefusedError) as caught:
        client.search(limit=501)
    assert (caught.value.reason, caught.value.field) == ("invalid-request", "limit")
    assert caught.value.message == "at most 500"
