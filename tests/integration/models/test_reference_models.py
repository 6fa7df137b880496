"""The reference models `make models` builds: their cards tell the truth about them.

Builds the models as `make models` does (cached under ``.local/models``: a few minutes the
first time, nothing once built), then runs each exported TorchScript file in Triton's Python
(torch is only there) on the held-out slides' tiles, fed as its card says, and compares the
accuracy measured with the one the card states.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from slidestream_contracts.model_card import ModelCardV1, OutputKind
from slidestream_devstack.paths import StackPaths, find_repo_root
from slidestream_devstack.tools import ensure_triton_python
from slidestream_samples.reference_models.build import (
    TILE_EMBEDDING_MODEL,
    TISSUE_TYPE_MODEL,
    TRAIN_SCRIPT,
    BuildResult,
    build,
)
from slidestream_samples.tissue_types import TISSUE_TYPES

pytestmark = pytest.mark.integration

MIN_HELD_OUT_ACCURACY = 0.9
"""The issue's bar for a reference model on slides it never saw."""
STATED_ACCURACY_TOLERANCE = 0.02
"""The card's accuracy against the one measured here (same tiles, same file: equal up to the
float rounding of another run)."""
EVALUATE_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def torch_python() -> Path:
    return ensure_triton_python()


@pytest.fixture(scope="module")
def built(torch_python: Path) -> BuildResult:
    return build(StackPaths(find_repo_root(None)).local / "models", torch_python)


def _card(built: BuildResult, name: str) -> ModelCardV1:
    return ModelCardV1.model_validate_json((built.model_dir(name) / "card.json").read_bytes())


def _measure(torch_python: Path, built: BuildResult, name: str) -> dict[str, float]:
    directory = built.model_dir(name)
    completed = subprocess.run(
        [
            str(torch_python),
            str(TRAIN_SCRIPT),
            "evaluate",
            "--model",
            str(directory / "model.pt"),
            "--card",
            str(directory / "card.json"),
            "--data",
            str(built.out / "data"),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=EVALUATE_TIMEOUT_S,
    )
    measured: dict[str, float] = json.loads(completed.stdout)
    return measured


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        (TISSUE_TYPE_MODEL, OutputKind.CLASS_PROBABILITIES),
        (TILE_EMBEDDING_MODEL, OutputKind.EMBEDDING),
    ],
)
def test_the_card_states_the_held_out_accuracy_the_model_has(
    torch_python: Path, built: BuildResult, name: str, kind: OutputKind
) -> None:
    card = _card(built, name)
    output = card.output(kind)
    assert output is not None
    measured = _measure(torch_python, built, name)
    assert measured["width"] == output.width
    assert measured["unit_error"] < 1e-4
    stated = card.metrics["held_out_accuracy"]
    assert abs(measured["accuracy"] - stated) <= STATED_ACCURACY_TOLERANCE
    assert stated >= MIN_HELD_OUT_ACCURACY
    assert measured["tiles"] >= 500


def test_the_classifier_names_every_planted_type(built: BuildResult) -> None:
    output = _card(built, TISSUE_TYPE_MODEL).output(OutputKind.CLASS_PROBABILITIES)
    assert output is not None
    assert output.labels == TISSUE_TYPES


def test_a_second_build_reuses_the_first(built: BuildResult, torch_python: Path) -> None:
    again = build(built.out, torch_python)
    assert (again.data_built, again.models_built) == (False, False)
    assert again.record["models_key"] == built.record["models_key"]
