"""``slidestream models ...`` against the in-memory models API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from typer.testing import CliRunner

from slidestream_client import cli, models_cli
from slidestream_client.model_client import ModelsClient

from .conftest import MODELS_API, TOKEN

if TYPE_CHECKING:
    from .conftest import FakeModelsApi

runner = CliRunner()


@pytest.fixture(autouse=True)
def fake_network(models_api: FakeModelsApi, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ModelsClient of every command talks to ``models_api``; the URLs it was given."""
    urls: list[str] = []

    def client(api: str, token: str) -> ModelsClient:
        urls.append(api)
        return ModelsClient(api, token, transport=models_api.transport())

    monkeypatch.setattr(models_cli, "ModelsClient", client)
    monkeypatch.setenv("INFERENCE_API", MODELS_API)
    monkeypatch.setenv("SLIDESTREAM_TOKEN", TOKEN)
    return urls


def models(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(cli.app, ["models", *args])
    assert TOKEN not in result.output
    return result.exit_code, result.stdout, result.stderr


def test_push_torchscript_json(torchscript_model: Path, models_api: FakeModelsApi) -> None:
    code, out, _ = models("push", str(torchscript_model), "--version", "2", "--json")
    assert code == 0, out
    line = json.loads(out)
    assert (line["status"], line["name"], line["version"]) == ("pushed", "tissue", "2")
    assert "2" in models_api.versions["tissue"]


def test_push_directory_human(triton_directory: Path) -> None:
    code, out, _ = models("push", str(triton_directory), "--name", "tissue-onnx")
    assert code == 0
    assert out.strip() == "pushed tissue-onnx version 1 (3 files)"


def test_invalid_model_is_refused_before_upload(
    torchscript_model: Path, models_api: FakeModelsApi
) -> None:
    card = torchscript_model.parent / "card.yaml"
    card.write_text(card.read_text().replace("width: 3", "width: 2"))
    code, out, err = models("push", str(torchscript_model), "--name", "Bad")
    assert code == 1
    assert out == ""
    lines = err.splitlines()
    assert lines[0] == "error: the model is invalid"
    assert lines[1].startswith("name: String should match pattern")
    assert lines[2] == (
        "outputs.0: output probabilities: 3 labels for an output of width 2: "
        "give one label per class"
    )
    assert models_api.requests == []


def test_invalid_model_json(torchscript_model: Path) -> None:
    torchscript_model.write_bytes(b"not torchscript")
    code, out, _ = models("push", str(torchscript_model), "--json")
    assert code == 1
    line = json.loads(out)
    assert (line["status"], line["error"]) == ("failed", "invalid-model")
    assert [p["field"] for p in line["problems"]] == ["model.pt"]


def test_dry_run_needs_no_server(
    torchscript_model: Path, models_api: FakeModelsApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SLIDESTREAM_TOKEN")
    code, out, _ = models("push", str(torchscript_model), "--dry-run", "--json")
    assert code == 0
    assert json.loads(out)["files"][-1] == "tissue/1/card.json"
    assert models_api.requests == []


def test_existing_version_says_versions_are_immutable(torchscript_model: Path) -> None:
    assert models("push", str(torchscript_model))[0] == 0
    code, _, err = models("push", str(torchscript_model))
    assert code == 1
    assert "versions are immutable" in err


def test_server_problems_are_printed_per_field(
    torchscript_model: Path, models_api: FakeModelsApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A server with a stricter check than the client's (a newer release): its 422 is shown.
    monkeypatch.setattr(models_api, "_push", lambda *_: _refusal())
    code, _, err = models("push", str(torchscript_model))
    assert code == 1
    assert "input.mpp_um: no model is served at 0.5 µm/px here" in err.splitlines()


def _refusal() -> httpx.Response:
    problems = [{"field": "input.mpp_um", "message": "no model is served at 0.5 µm/px here"}]
    return httpx.Response(
        422, json={"error": "invalid-model", "message": "x", "problems": problems}
    )


def test_missing_scope_is_an_error_exit(torchscript_model: Path, models_api: FakeModelsApi) -> None:
    models_api.scopes = {"models:read"}
    code, _, err = models("push", str(torchscript_model))
    assert code == 3
    assert "models:write" in err


def test_load_and_unload(models_api: FakeModelsApi) -> None:
    code, out, _ = models("load", "tissue")
    assert code == 0
    assert out.strip() == "tissue: READY (canary in 0.25 s: probabilities [1, 3])"
    code, out, _ = models("unload", "tissue", "--json")
    assert (code, json.loads(out)["state"]) == (0, "UNAVAILABLE")


def test_failed_canary_and_triton_down(models_api: FakeModelsApi) -> None:
    models_api.canary_failure = "output probabilities has shape [1, 4]"
    code, out, _ = models("load", "tissue", "--json")
    assert code == 1
    assert json.loads(out)["error"] == "canary-failed"
    models_api.canary_failure = None
    models_api.triton_down = True
    code, _, err = models("load", "tissue")
    assert code == 3
    assert "Triton does not answer" in err


def test_list_and_status(torchscript_model: Path) -> None:
    models("push", str(torchscript_model))
    code, out, _ = models("list")
    assert code == 0
    assert "tissue" in out and "READY" in out
    code, out, _ = models("list", "--json")
    assert json.loads(out)["models"][0]["versions"][0]["version"] == "1"
    code, out, _ = models("status", "tissue")
    assert code == 0
    assert "42.2" in out and "cpu" in out
    code, out, _ = models("status", "tissue", "--json")
    assert json.loads(out)["statistics"][0]["inference_count"] == 120


def test_status_of_an_unknown_model() -> None:
    code, _, err = models("status", "absent")
    assert code == 3
    assert "no model absent" in err


def test_route_routes_unroute(models_api: FakeModelsApi) -> None:
    code, out, _ = models(
        *("route", "tissue", "--tenant", "acme", "--min-qc", "warn", "--project", "p1")
    )
    assert code == 0
    assert "QC pass or warn" in out and "project p1" in out
    assert models_api.routes[("tissue", "acme")]["min_qc"] == "warn"
    code, out, _ = models("routes", "--json")
    assert json.loads(out)["routes"][0]["tenant"] == "acme"
    code, out, _ = models("unroute", "tissue", "--tenant", "acme", "--json")
    assert (code, json.loads(out)["status"]) == (0, "deleted")
    assert models_api.routes == {}


def test_route_needs_min_qc() -> None:
    code, _, _ = models("route", "tissue", "--tenant", "acme")
    assert code == 2


def test_backfill_progress_bar(models_api: FakeModelsApi) -> None:
    models_api.backfill_script = [
        {"requested": 2, "done": 0, "failed": 0},
        {"requested": 2, "done": 2, "failed": 0},
    ]
    code, out, err = models(
        *("backfill", "tissue", "--since", "2026-01-31", "--poll-interval", "0")
    )
    assert code == 0, err
    assert "backfill tissue" in err  # the bar
    assert out.strip() == "backfill bf-1 of tissue: 2 slides requested, 2 done, 0 failed (done)"
    assert models_api.backfill_requests[0]["since"] == "2026-01-31T00:00:00+00:00"


def test_backfill_json_with_failures(models_api: FakeModelsApi) -> None:
    models_api.backfill_script = [{"requested": 2, "done": 1, "failed": 1}]
    slides = "0b9b7d2c-6a55-4a39-9b9a-0b7e7e0c4f11,5f0e8a54-1a9d-4c2e-8a43-7d1f3e9b2c6a"
    code, out, _ = models("backfill", "tissue", "--slides", slides, "--json")
    assert code == 1
    line = json.loads(out)
    assert (line["outcome"], line["failed"]) == ("done", 1)
    assert len(models_api.backfill_requests[0]["slides"]) == 2


def test_backfill_timeout(models_api: FakeModelsApi) -> None:
    models_api.backfill_script = [{"requested": 2, "done": 1, "failed": 0}]
    code, out, _ = models(
        *("backfill", "tissue", "--since", "2026-01-01", "--timeout", "0", "--json")
    )
    assert (code, json.loads(out)["outcome"]) == (2, "timeout")


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("--since", "2026-01-01", "--slides", "0b9b7d2c-6a55-4a39-9b9a-0b7e7e0c4f11"),
        ("--since", "last tuesday"),
        ("--slides", "not-a-uuid"),
    ],
)
def test_backfill_argument_errors(args: tuple[str, ...], models_api: FakeModelsApi) -> None:
    code, _, _ = models("backfill", "tissue", *args)
    assert code == 2
    assert models_api.requests == []


def test_api_option_and_env(fake_network: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    models("routes", "--api", "http://elsewhere.test")
    monkeypatch.delenv("INFERENCE_API")
    models("routes")
    assert fake_network == ["http://elsewhere.test", "http://127.0.0.1:8095"]


def test_missing_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SLIDESTREAM_TOKEN")
    code, _, err = models("list")
    assert code == 2
    assert "no token" in err
