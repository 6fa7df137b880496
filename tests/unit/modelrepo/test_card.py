"""read_card (JSON, YAML, overrides, every invalid field) and signature_problems."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from slidestream_contracts.model_card import ModelCardV1
from slidestream_modelrepo import FieldProblem, ModelPackageError, read_card, signature_problems


def test_json_and_yaml_give_the_same_card(document: dict[str, Any]) -> None:
    from_json = read_card(json.dumps(document).encode())
    from_yaml = read_card(yaml.safe_dump(document).encode())
    assert from_json == from_yaml
    assert from_json.outputs[0].labels == ("tumour", "stroma", "fat")


def test_yaml_integer_version_is_read_as_its_digits(document: dict[str, Any]) -> None:
    document["version"] = 7
    assert read_card(yaml.safe_dump(document).encode()).version == "7"


def test_overrides_replace_or_supply_name_and_version(document: dict[str, Any]) -> None:
    del document["name"]
    card = read_card(json.dumps(document).encode(), name="other", version="9")
    assert (card.name, card.version) == ("other", "9")


def test_every_invalid_field_is_reported(document: dict[str, Any]) -> None:
    document["name"] = "Not A Slug"
    document["input"]["tile_size_px"] = 4
    document["outputs"][0]["labels"] = ["tumour"]
    with pytest.raises(ModelPackageError) as caught:
        read_card(json.dumps(document).encode())
    fields = [problem.field for problem in caught.value.problems]
    assert fields == ["name", "input.tile_size_px", "outputs.0"]
    labels = next(p for p in caught.value.problems if p.field == "outputs.0")
    assert labels.message.startswith("output probabilities: 1 labels for an output of width 3")
    assert "name: String should match pattern" in str(caught.value)


def test_an_empty_outputs_list_is_reported(document: dict[str, Any]) -> None:
    document["outputs"] = []
    with pytest.raises(ModelPackageError) as caught:
        read_card(json.dumps(document).encode())
    assert [problem.field for problem in caught.value.problems] == ["outputs"]


def test_card_wide_rule_is_reported_with_the_card_field(document: dict[str, Any]) -> None:
    document["preferred_batch_sizes"] = [64]
    with pytest.raises(ModelPackageError) as caught:
        read_card(json.dumps(document).encode())
    assert caught.value.problems == (
        FieldProblem("card", "preferred_batch_sizes [64] exceed max_batch_size 16"),
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff\xfe garbage", "not UTF-8 text"),
        (b"{not json", "not valid JSON or YAML"),
        (b"name: [unclosed", "not valid JSON or YAML"),
        (b"- a list\n- of things\n", "must be a mapping"),
    ],
)
def test_unreadable_documents_are_one_card_problem(data: bytes, message: str) -> None:
    with pytest.raises(ModelPackageError) as caught:
        read_card(data)
    (problem,) = caught.value.problems
    assert problem.field == "card"
    assert message in problem.message


def test_same_signature_has_no_problems(card: ModelCardV1) -> None:
    relabelled_output = card.outputs[0].model_copy(update={"labels": ("a", "b", "c")})
    new = card.model_copy(
        update={"version": "3", "outputs": (relabelled_output, *card.outputs[1:])}
    )
    assert signature_problems(new, card) == []


def test_changed_tensors_are_each_reported(card: ModelCardV1) -> None:
    new = ModelCardV1.model_validate(
        {
            **card.model_dump(),
            "version": "3",
            "input": {**card.input.model_dump(), "tile_size_px": 128},
            "max_batch_size": 32,
            "outputs": [
                {**card.outputs[0].model_dump(), "width": 2, "labels": ["a", "b"]},
                {**card.outputs[1].model_dump(), "dtype": "FP32"},
                card.outputs[2].model_dump(),
            ],
        }
    )
    problems = {problem.field: problem.message for problem in signature_problems(new, card)}
    assert set(problems) == {
        "input.tile_size_px",
        "max_batch_size",
        "outputs.0.width",
        "outputs.1.dtype",
    }
    assert problems["input.tile_size_px"].startswith("is 128 but version 2 has 64")
    assert problems["outputs.1.dtype"].startswith("is 'FP32' but version 2 has 'FP16'")


def test_renamed_outputs_are_one_problem(card: ModelCardV1) -> None:
    new = card.model_copy(update={"name": "other", "outputs": card.outputs[:1]})
    fields = [problem.field for problem in signature_problems(new, card)]
    assert fields == ["name", "outputs"]
