"""A model card with every kind of output, as the documents a team would write."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import pytest

from slidestream_contracts.model_card import ModelCardV1


def card_document() -> dict[str, Any]:
    return {
        "name": "tissue",
        "version": "2",
        "input": {"tile_size_px": 64, "mpp_um": 0.5},
        "outputs": [
            {
                "name": "probabilities",
                "kind": "class_probabilities",
                "width": 3,
                "labels": ["tumour", "stroma", "fat"],
            },
            {"name": "embedding", "kind": "embedding", "width": 16, "dtype": "FP16"},
            {
                "name": "segmentation",
                "kind": "segmentation",
                "width": 2,
                "labels": ["background", "tissue"],
                "size_px": 8,
            },
        ],
        "max_batch_size": 16,
        "preferred_batch_sizes": [4, 16],
    }


@pytest.fixture
def document() -> dict[str, Any]:
    return card_document()


@pytest.fixture
def card() -> ModelCardV1:
    return ModelCardV1.model_validate(card_document())


@pytest.fixture
def card_json() -> bytes:
    return json.dumps(card_document()).encode()


@pytest.fixture
def torchscript_bytes() -> bytes:
    """What ``torch.jit.save`` writes is a zip archive; its content does not matter here."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("tissue/code/__torch__.py", "def forward(self, x): return x\n")
    return buffer.getvalue()
