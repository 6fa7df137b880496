"""The model card refuses what cannot be true, naming the field."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from slidestream_contracts.model_card import ModelCardV1, OutputKind


def card(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "tissue-type",
        "version": "1",
        "input": {"tile_size_px": 64, "mpp_um": 2.0},
        "outputs": [
            {"name": "PROBS", "kind": "class_probabilities", "width": 2, "labels": ["a", "b"]},
            {"name": "EMBEDDING", "kind": "embedding", "width": 16},
        ],
    }
    base.update(changes)
    return base


def test_a_consistent_card_reads() -> None:
    parsed = ModelCardV1.model_validate(card())
    probabilities = parsed.output(OutputKind.CLASS_PROBABILITIES)
    assert probabilities is not None and probabilities.labels == ("a", "b")
    assert parsed.output(OutputKind.SEGMENTATION) is None


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"version": "v1"}, "version", "pattern"),
        ({"name": "Bad Name"}, "name", "pattern"),
        ({"input": {"tile_size_px": 8, "mpp_um": 2.0}}, "input.tile_size_px", "greater"),
        ({"input": {"tile_size_px": 64, "mpp_um": 0.0}}, "input.mpp_um", "greater"),
        (
            {
                "outputs": [
                    {"name": "P", "kind": "class_probabilities", "width": 3, "labels": ["a"]}
                ]
            },
            "outputs.0",
            "1 labels for an output of width 3",
        ),
        (
            {"outputs": [{"name": "E", "kind": "embedding", "width": 4, "labels": ["a"] * 4}]},
            "outputs.0",
            "no labels",
        ),
        ({"max_batch_size": 4, "preferred_batch_sizes": [8]}, "", "exceed max_batch_size"),
        ({"outputs": []}, "outputs", "at least 1"),
        ({"colour": "red"}, "colour", "Extra inputs"),
    ],
)
def test_each_impossible_field_is_refused_by_name(
    changes: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        ModelCardV1.model_validate(card(**changes))
    errors = caught.value.errors()
    locations = [".".join(str(part) for part in error["loc"]) for error in errors]
    assert any(location.startswith(field) for location in locations), locations
    assert any(words in error["msg"] for error in errors), errors
