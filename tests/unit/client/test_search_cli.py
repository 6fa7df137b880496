"""``slidestream search ...`` against the in-memory search API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from slidestream_client import cli, search_cli
from slidestream_client.search_client import DEFAULT_FACETS, SearchClient
from slidestream_contracts.search import SearchPage, SimilarPage
from tests.support.search_api_fake import SEARCH_API, TOKEN, FakeSearchApi, slide_rows

runner = CliRunner()


@pytest.fixture(autouse=True)
def fake_network(search_api: FakeSearchApi, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The SearchClient of every command talks to ``search_api``; the URLs it was given."""
    urls: list[str] = []

    def client(api: str, token: str) -> SearchClient:
        urls.append(api)
        return SearchClient(api, token, transport=search_api.transport())

    monkeypatch.setattr(search_cli, "SearchClient", client)
    monkeypatch.setenv("SEARCH_API", SEARCH_API)
    monkeypatch.setenv("SLIDESTREAM_TOKEN", TOKEN)
    monkeypatch.setenv("COLUMNS", "200")  # rich tables unwrapped
    return urls


def search(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(cli.app, ["search", *args])
    assert TOKEN not in result.output
    return result.exit_code, result.stdout, result.stderr


def test_text_search_table(search_api: FakeSearchApi, fake_network: list[str]) -> None:
    code, out, err = search("colon", "--filter", "stain=H&E")
    assert code == 0, err
    assert search_api.queries() == [[("filter", "stain=H&E"), ("q", "colon")]]
    assert fake_network == [SEARCH_API]
    assert "slides: 1 of 1" in out
    row = next(line for line in out.splitlines() if "00000000-0000-0000-0000-000000000001" in line)
    for value in ("H&E", "colon", "aperio", "pass", "indexed", "2026-01-01 08:30"):
        assert value in row


def test_options_after_the_text_and_json(search_api: FakeSearchApi) -> None:
    search_api.slides = slide_rows(8)
    code, out, _ = search("--limit", "2", "colon", "--sort", "-uploaded_at", "--json")
    assert code == 0
    page = SearchPage.model_validate_json(out)
    assert (len(page.items), page.total, page.next_cursor) == (2, 4, "2")
    assert dict(search_api.queries()[0]) == {"q": "colon", "sort": "-uploaded_at", "limit": "2"}


def test_a_first_argument_naming_a_subcommand_runs_it(search_api: FakeSearchApi) -> None:
    slide_id = str(search_api.slides[0]["slide_id"])
    code, out, err = search("similar", "--slide", slide_id, "--json")
    assert code == 0, err
    assert SimilarPage.model_validate_json(out).model_version == "1"
    assert search_api.queries() == []
    # after "--", the word is the text
    code, _, _ = search("--", "similar")
    assert code == 0
    assert search_api.queries() == [[("q", "similar")]]


def test_facets_ask_the_default_set_and_draw_bars(search_api: FakeSearchApi) -> None:
    search_api.slides = slide_rows(6)
    code, out, _ = search("--facets", "--facet", "project", "--facet", "stain")
    assert code == 0
    facets = [value for name, value in search_api.queries()[0] if name == "facet"]
    assert facets == ["project", "stain", *[f for f in DEFAULT_FACETS if f != "stain"]]
    organ = out[out.index("organ") :]
    assert "colon" in organ and "lung" in organ
    stain_rows = [line for line in out.splitlines() if line.strip().startswith(("│ H&E", "│ IHC"))]
    assert all("█" in line for line in stain_rows[-2:])
    assert "(none)" in out  # project: no slide has one


def test_all_follows_the_cursor(search_api: FakeSearchApi) -> None:
    search_api.slides = slide_rows(5)
    code, out, _ = search("--all", "--limit", "2", "--json")
    assert code == 0
    pages = [SearchPage.model_validate_json(line) for line in out.splitlines()]
    assert [len(page.items) for page in pages] == [2, 2, 1]
    code, out, _ = search("--all", "--limit", "2")
    assert code == 0
    assert "slides: 5 of 5" in out and "more pages" not in out
    code, out, _ = search("--limit", "2")
    assert "slides: 2 of 5" in out and "more pages: --all" in out


def test_bad_filter_is_a_usage_error(search_api: FakeSearchApi) -> None:
    code, _, err = search("--filter", "stain")
    assert code == 2
    assert "'stain' is not FIELD OP VALUE" in err
    assert search_api.requests == []


def test_server_refusal_names_the_field() -> None:
    code, out, err = search("--filter", "colour=red")
    assert (code, out) == (1, "")
    assert err.strip() == "error: filter: unknown field 'colour'"
    code, out, _ = search("--filter", "colour=red", "--json")
    assert code == 1
    assert json.loads(out) == {
        "status": "failed",
        "error": "unknown-field",
        "message": "unknown field 'colour'",
        "field": "filter",
    }


def test_refused_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLIDESTREAM_TOKEN", "someone-else")
    code, _, err = search("colon")
    assert code == 3
    assert "error: the server refused the token: unknown token" in err
    assert "SLIDESTREAM_TOKEN" in err


def test_no_token_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SLIDESTREAM_TOKEN")
    code, _, err = search("colon")
    assert code == 2
    assert "no token" in err


def test_unavailable_server(search_api: FakeSearchApi) -> None:
    search_api.unavailable = True
    code, _, err = search("fields")
    assert code == 3
    assert "the search index does not answer" in err


def test_export_to_a_file(search_api: FakeSearchApi, tmp_path: Path) -> None:
    out_file = tmp_path / "cohort.csv"
    code, out, err = search(
        "--filter", "qc_verdict=pass", "--export", "csv", "--out", str(out_file)
    )
    assert code == 0, err
    assert out_file.read_bytes() == search_api.export_body("csv")
    assert out.strip().startswith("exported 5 slides (")
    assert str(out_file) in out.replace("\n", "")
    jsonl = tmp_path / "cohort.jsonl"
    code, out, _ = search("--export", "jsonl", "--out", str(jsonl), "--json")
    assert code == 0
    line = json.loads(out)
    assert (line["status"], line["rows"], line["path"]) == ("exported", 5, str(jsonl))
    assert line["bytes"] == jsonl.stat().st_size


def test_export_needs_out(search_api: FakeSearchApi) -> None:
    code, _, err = search("--export", "csv")
    assert code == 2
    assert "--export and --out together" in err
    assert search_api.requests == []


def test_fields(search_api: FakeSearchApi) -> None:
    code, out, _ = search("fields")
    assert code == 0
    assert "mpp_um" in out and "number" in out
    code, out, _ = search("fields", "--json")
    fields = {row["name"]: row for row in json.loads(out)["fields"]}
    assert fields["stain"] == {
        "name": "stain",
        "kind": "keyword",
        "description": "manifest stain",
        "facetable": True,
    }


def test_similar_region(search_api: FakeSearchApi) -> None:
    slide_id = str(search_api.slides[0]["slide_id"])
    args = ("similar", "--slide", slide_id, "--region", "100, 200,512,256", "--level", "1")
    code, out, err = search(*args, "--k", "3", "--model", "tissue")
    assert code == 0, err
    assert search_api.similar_bodies[0]["region"] == {
        "x": 100,
        "y": 200,
        "width": 512,
        "height": 256,
        "level": 1,
    }
    assert (search_api.similar_bodies[0]["k"], search_api.similar_bodies[0]["model"]) == (
        3,
        "tissue",
    )
    assert "similar slides (tissue version 1)" in out
    assert f"{SEARCH_API}/v1/similar/crop/" in out
    assert "0.0500" in out


@pytest.mark.parametrize("region", ["1,2,3", "a,b,c,d", "0,0,0,10", "-1,0,5,5", "1,2,3,4,5"])
def test_bad_region_is_a_usage_error(search_api: FakeSearchApi, region: str) -> None:
    code, _, err = search(
        "similar", "--slide", str(search_api.slides[0]["slide_id"]), "--region", region
    )
    assert code == 2
    assert "is not X,Y,W,H" in err
    assert search_api.requests == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "give either --slide or --patch"),
        (("--slide", "not-a-uuid"), "'not-a-uuid' is not a slide id"),
        (("--slide", "00000000-0000-0000-0000-000000000001", "--level", "2"), "--level applies"),
        (("--slide", "00000000-0000-0000-0000-000000000001", "--k", "101"), "--k"),
    ],
)
def test_similar_usage_errors(args: tuple[str, ...], message: str) -> None:
    code, _, err = search("similar", *args)
    assert code == 2
    assert message in err


def test_similar_by_patch(search_api: FakeSearchApi, tmp_path: Path) -> None:
    image = tmp_path / "patch.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\npixels")
    code, out, err = search("similar", "--patch", str(image), "--k", "2", "--json")
    assert code == 0, err
    assert len(SimilarPage.model_validate_json(out).items) == 2
    assert search_api.patches[0]["image"] == image.read_bytes()
    assert "model" not in search_api.patches[0]


def test_similar_unknown_slide() -> None:
    code, _, err = search("similar", "--slide", "00000000-0000-0000-0000-0000000000ff")
    assert code == 3
    assert "error: slide_id: no such slide" in err
