"""Every route of the models API (models, routes, backfills, embeddings) needs a token (401
without one); only health and metrics are open."""

from __future__ import annotations

from pathlib import Path

from slidestream_inference import main
from slidestream_inference.settings import InferenceSettings
from tests.support.inference import FakeTriton
from tests.support.routes import answers_without_a_token


async def test_every_route_answers_401_without_a_token(tmp_path: Path) -> None:
    tokens = tmp_path / "api-tokens.json"
    tokens.write_text("[]")
    settings = InferenceSettings(data_dir=tmp_path, api_tokens_file=tokens)
    app = main.create_app(settings, triton=FakeTriton())

    answers = await answers_without_a_token(app)

    assert {
        ("GET", "/v1/models"),
        ("GET", "/v1/models/{name}"),
        ("GET", "/v1/routes"),
        ("GET", "/v1/models/{name}/backfill/{backfill_id}"),
        ("POST", "/v1/models/{name}/versions/{version}"),
        ("POST", "/v1/models/{name}/embed"),
    } <= set(answers)
    assert answers == dict.fromkeys(answers, 401)
