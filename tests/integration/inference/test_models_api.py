"""The models API of the running stack with its real Triton: a Triton model directory and a
TorchScript file pushed with ``slidestream models push``, loaded with a canary and reported
``READY`` with Triton's statistics; every invalid card field refused by the API itself (422,
per-field problems, nothing written) and an existing version refused (409)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from slidestream_contracts.model_card import ModelCardV1
from slidestream_modelrepo import pack_upload
from slidestream_platform.objectstore.minio_store import MinioObjectStore
from tests.support.inference_stack import (
    SLOW_CONFIG_PBTXT,
    SLOW_MODEL_PY,
    Janitor,
    ModelsApi,
    make_slow_directory,
    make_tile_net,
    models_cli,
    slow_model_card,
    tile_net_card,
)

pytestmark = pytest.mark.integration


def test_a_directory_and_a_torchscript_file_load_with_a_canary_and_report_ready(
    models_api: ModelsApi, janitor: Janitor, store: MinioObjectStore, tmp_path: Path
) -> None:
    script_name, directory_name = janitor.model_name(), janitor.model_name()
    model_pt = make_tile_net(tmp_path / "script", tile_net_card(script_name), seed=11)
    directory = make_slow_directory(
        tmp_path / "directory", slow_model_card(directory_name), seconds=0.0
    )
    api, token = models_api.url, models_api.token

    pushed_script = models_cli(token, api, "push", str(model_pt))
    pushed_directory = models_cli(token, api, "push", str(directory))
    assert pushed_script.code == 0, pushed_script.stderr[-2000:]
    assert pushed_directory.code == 0, pushed_directory.stderr[-2000:]
    # The wrapper and config are generated for the TorchScript file; card.json comes last.
    assert pushed_script.last["files"] == [
        f"{script_name}/config.pbtxt",
        f"{script_name}/1/model.py",
        f"{script_name}/1/model.pt",
        f"{script_name}/1/card.json",
    ]
    assert pushed_directory.last["files"][-1] == f"{directory_name}/1/card.json"
    assert f"{directory_name}/1/model.py" in pushed_directory.last["files"]
    stored = {s.key for s in store.list(models_api.bucket, f"{script_name}/")}
    assert stored == set(pushed_script.last["files"])

    for name, outputs in ((script_name, {"PROBS": [1, 3], "EMBED": [1, 8]}),
                          (directory_name, {"PROBS": [1, 2]})):  # fmt: skip
        loaded = models_cli(token, api, "load", name)
        assert loaded.code == 0, loaded.stderr[-2000:]
        assert loaded.last["state"] == "READY"
        assert loaded.last["canary"]["outputs"] == outputs

        status = models_cli(token, api, "status", name)
        assert status.code == 0, status.stderr[-2000:]
        detail = status.last
        [version] = detail["versions"]
        assert (version["version"], version["state"]) == ("1", "READY"), version
        assert version["device"], version
        assert detail["loaded_at"] is not None
        [statistics] = detail["statistics"]
        # The canary was one request of one tile: Triton counted it.
        assert statistics["version"] == "1"
        assert statistics["inference_count"] >= 1
        assert statistics["execution_count"] >= 1
        assert statistics["compute_ms_mean"] > 0

    listed = models_cli(token, api, "list")
    assert listed.code == 0, listed.stderr[-2000:]
    states = {
        model["name"]: [v["state"] for v in model["versions"]] for model in listed.last["models"]
    }
    assert states[script_name] == ["READY"]
    assert states[directory_name] == ["READY"]


# -- refusals --------------------------------------------------------------------------------

TORCHSCRIPT_BYTES = b"PK\x05\x06" + b"\x00" * 18
"""An empty zip archive: shaped like torch.jit.save's file (cards are refused before it runs)."""


def _labels_short(card: dict[str, Any]) -> None:
    card["outputs"][0]["labels"] = ["tumour", "stroma"]


def _bad_version(card: dict[str, Any]) -> None:
    card["version"] = "v1"


def _preferred_over_max(card: dict[str, Any]) -> None:
    card["preferred_batch_sizes"] = [8, 32]


def _tile_too_small(card: dict[str, Any]) -> None:
    card["input"]["tile_size_px"] = 8


def _tile_too_large(card: dict[str, Any]) -> None:
    card["input"]["tile_size_px"] = 4096


CARD_REFUSALS = [
    pytest.param(_labels_short, "outputs.0", "2 labels for an output of width 3", id="labels"),
    pytest.param(_bad_version, "version", "pattern", id="version"),
    pytest.param(
        _preferred_over_max,
        "card",  # a rule across two fields: the card's, its message names both
        "preferred_batch_sizes [32] exceed max_batch_size 16",
        id="preferred-batch",
    ),
    pytest.param(_tile_too_small, "input.tile_size_px", "greater than or equal to 16", id="tile"),
    pytest.param(
        _tile_too_large, "input.tile_size_px", "less than or equal to 2048", id="tile-max"
    ),
]


def _post(
    api: ModelsApi, name: str, card: dict[str, Any], archive: bytes, version: str = "1"
) -> httpx.Response:
    """The push request as any client sends it (the CLI would refuse these cards itself)."""
    return httpx.post(
        f"{api.url}/v1/models/{name}/versions/{version}",
        headers={"Authorization": f"Bearer {api.token}"},
        data={"card": json.dumps(card)},
        files={"archive": ("model.tar.gz", archive, "application/gzip")},
        timeout=60,
    )


def _script_archive(card: dict[str, Any]) -> bytes:
    return pack_upload(ModelCardV1.model_validate(card), {"model.pt": TORCHSCRIPT_BYTES})


def _refused(
    response: httpx.Response, store: MinioObjectStore, api: ModelsApi, name: str
) -> dict[tuple[str, str], None]:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "invalid", body
    assert body["message"]
    assert list(store.list(api.bucket, f"{name}/")) == []
    return {(p["field"], p["message"]): None for p in body["problems"]}


@pytest.mark.parametrize(("spoil", "field", "words"), CARD_REFUSALS)
def test_each_invalid_card_field_is_refused_with_its_problem_and_nothing_written(
    models_api: ModelsApi,
    janitor: Janitor,
    store: MinioObjectStore,
    spoil: Any,
    field: str,
    words: str,
) -> None:
    name = janitor.model_name()
    valid = tile_net_card(name)
    card = copy.deepcopy(valid)
    spoil(card)
    problems = _refused(
        _post(models_api, name, card, _script_archive(valid)), store, models_api, name
    )
    assert [f for f, _ in problems] == [field], problems
    assert any(words in message for _, message in problems), problems


def test_a_directory_whose_config_contradicts_its_card_is_refused_field_by_field(
    models_api: ModelsApi, janitor: Janitor, store: MinioObjectStore
) -> None:
    name = janitor.model_name()
    card = slow_model_card(name)
    config = SLOW_CONFIG_PBTXT.replace("dims: [ 2 ]", "dims: [ 3 ]").replace(
        "max_batch_size: 8", "max_batch_size: 4"
    )
    files = {"config.pbtxt": config.encode(), "1/model.py": SLOW_MODEL_PY.encode()}
    archive = pack_upload(ModelCardV1.model_validate(card), files)
    problems = _refused(_post(models_api, name, card, archive), store, models_api, name)
    fields = [f for f, _ in problems]
    assert fields == ["config.max_batch_size", "config.output.PROBS.dims"], problems


def test_pushing_an_existing_version_is_refused_and_the_version_kept(
    models_api: ModelsApi, janitor: Janitor, store: MinioObjectStore, tmp_path: Path
) -> None:
    name = janitor.model_name()
    card = tile_net_card(name)
    model_pt = make_tile_net(tmp_path, card, seed=5)
    archive = pack_upload(ModelCardV1.model_validate(card), {"model.pt": model_pt.read_bytes()})
    first = _post(models_api, name, card, archive)
    assert first.status_code == 201, first.text
    card_key = f"{name}/1/card.json"
    before = store.stat(models_api.bucket, card_key)
    assert before is not None

    again = models_cli(models_api.token, models_api.url, "push", str(model_pt))
    assert again.code == 1, again.stderr[-2000:]
    assert again.last["error"] == "version-exists", again.last
    second = _post(models_api, name, {**card, "description": "changed"}, archive)
    assert second.status_code == 409, second.text
    assert second.json()["error"] == "version-exists"
    after = store.stat(models_api.bucket, card_key)
    assert after is not None and after.etag == before.etag
