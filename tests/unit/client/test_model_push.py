"""prepare_push: the card found, overridden and checked, the files chosen, before any upload."""

from __future__ import annotations

from pathlib import Path

import pytest

from slidestream_client.model_push import prepare_push
from slidestream_modelrepo import FieldProblem, ModelPackageError, unpack_upload


def test_torchscript_with_card_beside(torchscript_model: Path) -> None:
    prepared = prepare_push(torchscript_model)
    assert (prepared.card.name, prepared.card.version) == ("tissue", "1")
    assert list(prepared.upload_files) == ["model.pt"]
    assert list(prepared.package.files) == [
        "tissue/config.pbtxt",
        "tissue/1/model.py",
        "tissue/1/model.pt",
        "tissue/1/card.json",
    ]
    archive = unpack_upload(prepared.archive(), max_bytes=1 << 20)
    assert archive == {"model.pt": torchscript_model.read_bytes()}


def test_name_and_version_override_the_card(torchscript_model: Path) -> None:
    prepared = prepare_push(torchscript_model, name="tissue-v2", version="5")
    assert prepared.package.card_key() == "tissue-v2/5/card.json"


def test_card_option_wins_over_the_card_beside(torchscript_model: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    other.write_text(
        '{"name": "other", "version": "3", "input": {"tile_size_px": 32, "mpp_um": 1.0},'
        ' "outputs": [{"name": "embedding", "kind": "embedding", "width": 8}]}'
    )
    assert prepare_push(torchscript_model, card_path=other).card.name == "other"


def test_directory_leaves_out_its_card_and_hidden_files(triton_directory: Path) -> None:
    prepared = prepare_push(triton_directory, version="2")
    assert sorted(prepared.upload_files) == ["1/model.onnx", "config.pbtxt"]
    assert list(prepared.package.files) == [
        "tissue/config.pbtxt",
        "tissue/2/model.onnx",
        "tissue/2/card.json",
    ]


def test_every_problem_of_a_directory_is_reported(triton_directory: Path) -> None:
    config = triton_directory / "config.pbtxt"
    config.write_text(config.read_text().replace("max_batch_size: 8", "max_batch_size: 4"))
    (triton_directory / "1" / "model.onnx").unlink()
    (triton_directory / "1" / "other.bin").write_bytes(b"x")
    with pytest.raises(ModelPackageError) as caught:
        prepare_push(triton_directory)
    assert [problem.field for problem in caught.value.problems] == [
        "config.max_batch_size",
        "1/model.onnx",
    ]


def test_invalid_card_fields(torchscript_model: Path) -> None:
    card = torchscript_model.parent / "card.yaml"
    card.write_text(card.read_text().replace("width: 3", "width: 4"))
    with pytest.raises(ModelPackageError) as caught:
        prepare_push(torchscript_model, name="Bad Name")
    fields = [problem.field for problem in caught.value.problems]
    assert fields == ["name", "outputs.0"]


def test_missing_card(torchscript_model: Path) -> None:
    (torchscript_model.parent / "card.yaml").unlink()
    with pytest.raises(ModelPackageError) as caught:
        prepare_push(torchscript_model)
    (problem,) = caught.value.problems
    assert problem.field == "card"
    assert problem.message.endswith("pass --card")


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(ModelPackageError) as caught:
        prepare_push(tmp_path / "absent.pt")
    assert caught.value.problems == (
        FieldProblem(str(tmp_path / "absent.pt"), "no such file or directory"),
    )


def test_not_torchscript(torchscript_model: Path) -> None:
    torchscript_model.write_bytes(b"a pickled state_dict")
    with pytest.raises(ModelPackageError) as caught:
        prepare_push(torchscript_model)
    assert [problem.field for problem in caught.value.problems] == ["model.pt"]
