"""package_torchscript and package_directory: the bucket objects, or every problem."""

from __future__ import annotations

import json

import pytest

from slidestream_contracts.model_card import ModelCardV1
from slidestream_modelrepo import (
    FieldProblem,
    ModelPackageError,
    package_directory,
    package_torchscript,
    parse_config,
    render_config,
)


def test_torchscript_package_layout(card: ModelCardV1, torchscript_bytes: bytes) -> None:
    package = package_torchscript(torchscript_bytes, card, gpus=0)
    assert list(package.files) == [
        "tissue/config.pbtxt",
        "tissue/2/model.py",
        "tissue/2/model.pt",
        "tissue/2/card.json",
    ]
    assert package.card_key() == "tissue/2/card.json"
    assert package.files["tissue/2/model.pt"] == torchscript_bytes
    assert ModelCardV1.model_validate_json(package.files[package.card_key()]) == card
    config = parse_config(package.files["tissue/config.pbtxt"].decode())
    assert config.instance_group[0].kind == config.instance_group[0].KIND_CPU
    compile(package.files["tissue/2/model.py"], "model.py", "exec")


def test_torchscript_on_gpus(card: ModelCardV1, torchscript_bytes: bytes) -> None:
    package = package_torchscript(torchscript_bytes, card, gpus=1)
    assert b"KIND_GPU" in package.files["tissue/config.pbtxt"]


@pytest.mark.parametrize("data", [b"", b"\x80\x02}q\x00.", b"PK but not a zip"])
def test_not_torchscript_is_refused(card: ModelCardV1, data: bytes) -> None:
    with pytest.raises(ModelPackageError) as caught:
        package_torchscript(data, card, gpus=0)
    (problem,) = caught.value.problems
    assert problem.field == "model.pt"
    assert "torch.jit.save" in problem.message


def directory(card: ModelCardV1, version: str = "1") -> dict[str, bytes]:
    return {
        "config.pbtxt": render_config(card, gpus=0).encode(),
        f"{version}/model.py": b"class TritonPythonModel: pass\n",
        f"{version}/weights/part-0.bin": b"\x00" * 8,
    }


def test_directory_version_is_renamed_to_the_cards(card: ModelCardV1) -> None:
    files = directory(card, version="1")
    files["card.yaml"] = b"ignored: the card comes separately"
    package = package_directory(files, card)
    assert list(package.files) == [
        "tissue/config.pbtxt",
        "tissue/2/model.py",
        "tissue/2/weights/part-0.bin",
        "tissue/2/card.json",
    ]
    assert package.files["tissue/config.pbtxt"] == files["config.pbtxt"]
    assert json.loads(package.files[package.card_key()])["version"] == "2"


def test_directory_card_copy_is_replaced(card: ModelCardV1) -> None:
    files = {**directory(card, version="2"), "2/card.json": b"{}"}
    package = package_directory(files, card)
    assert ModelCardV1.model_validate_json(package.files["tissue/2/card.json"]) == card


def test_directory_without_config(card: ModelCardV1) -> None:
    files = directory(card)
    del files["config.pbtxt"]
    with pytest.raises(ModelPackageError) as caught:
        package_directory(files, card)
    assert caught.value.problems == (
        FieldProblem("config.pbtxt", "missing from the model directory"),
    )


def test_directory_layout_and_config_problems_come_together(card: ModelCardV1) -> None:
    files = directory(card)
    files["config.pbtxt"] = files["config.pbtxt"].replace(b"max_batch_size: 16", b"")
    files["README.md"] = b"notes"
    files["latest/model.py"] = b""
    with pytest.raises(ModelPackageError) as caught:
        package_directory(files, card)
    fields = [problem.field for problem in caught.value.problems]
    assert fields == ["config.max_batch_size", "README.md", "latest/model.py"]


def test_directory_with_two_versions(card: ModelCardV1) -> None:
    files = {**directory(card, "1"), **directory(card, "3")}
    with pytest.raises(ModelPackageError) as caught:
        package_directory(files, card)
    assert caught.value.problems == (
        FieldProblem("version", "the directory holds versions ['1', '3']: push one at a time"),
    )


def test_directory_without_a_version(card: ModelCardV1) -> None:
    with pytest.raises(ModelPackageError) as caught:
        package_directory({"config.pbtxt": directory(card)["config.pbtxt"]}, card)
    assert caught.value.problems[0].message == "no version directory with the model's files"


def test_directory_without_the_backends_model_file(card: ModelCardV1) -> None:
    files = directory(card)
    del files["1/model.py"]
    with pytest.raises(ModelPackageError) as caught:
        package_directory(files, card)
    assert caught.value.problems == (
        FieldProblem("2/model.py", "missing: the python backend loads this file"),
    )


def test_directory_of_a_platform_model(card: ModelCardV1) -> None:
    python = render_config(card, gpus=0)
    config = python.replace('backend: "python"', 'platform: "onnxruntime_onnx"')
    files = {"config.pbtxt": config.encode(), "2/model.onnx": b"onnx"}
    assert "tissue/2/model.onnx" in package_directory(files, card).files


@pytest.mark.parametrize("key", ["/etc/passwd", "../escape/model.py", "1/../../x", "1\\x", "1//x"])
def test_directory_paths_outside_are_refused(card: ModelCardV1, key: str) -> None:
    files = {**directory(card), key: b"x"}
    with pytest.raises(ModelPackageError) as caught:
        package_directory(files, card)
    assert [problem.field for problem in caught.value.problems] == [key]
