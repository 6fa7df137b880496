"""ModelsClient against the in-memory models API (``httpx.MockTransport``)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from slidestream_client.errors import (
    AuthenticationError,
    ModelRefusedError,
    PermissionDeniedError,
    VersionExistsError,
)
from slidestream_client.model_client import ModelsClient
from slidestream_modelrepo import FieldProblem, read_card

from .conftest import MODELS_API, TOKEN

if TYPE_CHECKING:
    from .conftest import FakeModelsApi


def connect(api: FakeModelsApi, token: str = TOKEN) -> ModelsClient:
    return ModelsClient(MODELS_API, token, transport=api.transport())


def test_push_path_sends_what_the_service_accepts(
    models_api: FakeModelsApi, torchscript_model: Path
) -> None:
    with connect(models_api) as client:
        pushed = client.push_path(torchscript_model, version="3")
    assert (pushed.name, pushed.version) == ("tissue", "3")
    assert pushed.files[-1] == "tissue/3/card.json"
    assert models_api.versions["tissue"]["3"]["version"] == "3"
    assert models_api.requests == [("POST", "/v1/models/tissue/versions/3")]


def test_push_of_a_directory(models_api: FakeModelsApi, triton_directory: Path) -> None:
    with connect(models_api) as client:
        client.push_path(triton_directory)
    assert models_api.pushed_files["tissue/1"] == [
        "tissue/config.pbtxt",
        "tissue/1/model.onnx",
        "tissue/1/card.json",
    ]


def test_existing_version_is_refused(models_api: FakeModelsApi, torchscript_model: Path) -> None:
    with connect(models_api) as client:
        client.push_path(torchscript_model)
        with pytest.raises(VersionExistsError) as caught:
            client.push_path(torchscript_model)
    assert caught.value.status_code == 409
    assert caught.value.reason == "version-exists"


def test_server_problems_are_kept_field_by_field(
    models_api: FakeModelsApi, torchscript_model: Path
) -> None:
    card = read_card((torchscript_model.parent / "card.yaml").read_bytes())
    with connect(models_api) as client, pytest.raises(ModelRefusedError) as caught:
        client.push(card, b"not a tar.gz")
    (problem,) = caught.value.problems
    assert problem.field == "archive"
    assert isinstance(problem, FieldProblem)


def test_missing_scope_and_unknown_token(
    models_api: FakeModelsApi, torchscript_model: Path
) -> None:
    models_api.scopes = {"models:read"}
    with connect(models_api) as client, pytest.raises(PermissionDeniedError) as caught:
        client.push_path(torchscript_model)
    assert "models:write" in str(caught.value)
    with connect(models_api, token="wrong") as client, pytest.raises(AuthenticationError):
        client.models()


def test_listing_and_status(models_api: FakeModelsApi, torchscript_model: Path) -> None:
    with connect(models_api) as client:
        client.push_path(torchscript_model)
        listing = client.models()
        detail = client.model("tissue")
    assert [(m.name, [v.version for v in m.versions]) for m in listing.models] == [
        ("tissue", ["1"])
    ]
    assert detail.statistics[0].compute_ms_mean == 42.25
    assert detail.loaded_at == datetime(2026, 1, 1, 12, tzinfo=UTC)


def test_load_reports_the_canary(models_api: FakeModelsApi) -> None:
    with connect(models_api) as client:
        result = client.load("tissue")
    assert result.state == "READY"
    assert result.canary is not None
    assert result.canary.outputs == {"probabilities": [1, 3]}


def test_failed_canary_is_a_refusal(models_api: FakeModelsApi) -> None:
    models_api.canary_failure = "output probabilities has shape [1, 4], the card says [1, 3]"
    with connect(models_api) as client, pytest.raises(ModelRefusedError) as caught:
        client.load("tissue")
    assert caught.value.reason == "canary-failed"
    assert "[1, 4]" in caught.value.message


def test_routes_round_trip(models_api: FakeModelsApi) -> None:
    with connect(models_api) as client:
        saved = client.set_route("tissue", tenant="acme", min_qc="warn", stain="H&E")
        listed = client.routes()
        client.delete_route("tissue", tenant="acme")
        remaining = client.routes()
    assert (saved.name, saved.min_qc, saved.stain, saved.project) == (
        "tissue",
        "warn",
        "H&E",
        None,
    )
    assert [route.tenant for route in listed.routes] == ["acme"]
    assert remaining.routes == []
    assert ("DELETE", "/v1/routes/tissue") in models_api.requests


def test_backfill_waits_for_every_slide(models_api: FakeModelsApi) -> None:
    models_api.backfill_script = [
        {"requested": 3, "done": 0, "failed": 0},
        {"requested": 3, "done": 2, "failed": 0},
        {"requested": 3, "done": 2, "failed": 1},
    ]
    seen = []
    since = datetime(2026, 1, 1, tzinfo=UTC)
    with connect(models_api) as client:
        started = client.backfill("tissue", since=since)
        final = client.wait_backfill(
            "tissue", started.backfill_id, timeout_s=5, poll_interval_s=0, on_progress=seen.append
        )
    assert models_api.backfill_requests == [
        {"since": "2026-01-01T00:00:00+00:00", "slides": None, "version": None}
    ]
    assert [p.done + p.failed for p in seen] == [0, 2, 3]
    assert final.finished and final.failed == 1


def test_backfill_wait_gives_up_at_the_timeout(models_api: FakeModelsApi) -> None:
    models_api.backfill_script = [{"requested": 2, "done": 1, "failed": 0}]
    with connect(models_api) as client:
        started = client.backfill("tissue", slides=["a"])
        last = client.wait_backfill("tissue", started.backfill_id, timeout_s=0)
    assert not last.finished


def test_backfill_needs_since_or_slides(models_api: FakeModelsApi) -> None:
    with connect(models_api) as client, pytest.raises(ValueError, match="either"):
        client.backfill("tissue")
    assert models_api.requests == []


def test_repr_never_shows_the_token(models_api: FakeModelsApi) -> None:
    with connect(models_api) as client:
        assert TOKEN not in repr(client)
