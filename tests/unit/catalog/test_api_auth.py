"""Every route of the catalog (slide state, search, export, similarity, crops) needs a partner
token (401 without one); only health and metrics are open."""

from __future__ import annotations

from pathlib import Path

from slidestream_catalog.main import create_app
from slidestream_catalog.settings import CatalogSettings
from tests.support.routes import answers_without_a_token


async def test_every_route_answers_401_without_a_token(tmp_path: Path) -> None:
    app = create_app(CatalogSettings(data_dir=tmp_path, work_dir=tmp_path / "work"))

    answers = await answers_without_a_token(app)

    assert {
        ("GET", "/slides/{slide_id}"),
        ("GET", "/v1/search"),
        ("GET", "/v1/search/fields"),
        ("GET", "/v1/search/export"),
        ("POST", "/v1/similar"),
        ("POST", "/v1/similar/patch"),
        ("GET", "/v1/slides/{slide_id}/crop"),
    } <= set(answers)
    assert answers == dict.fromkeys(answers, 401)
