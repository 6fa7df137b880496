"""The reference models' cards, written from what training measured."""

from __future__ import annotations

from slidestream_contracts.model_card import ModelCardV1, OutputKind
from slidestream_samples.reference_models.build import (
    TILE_EMBEDDING_MODEL,
    TISSUE_TYPE_MODEL,
    data_key,
    model_cards,
    models_key,
)
from slidestream_samples.reference_models.dataset import TILE_MPP_UM, TILE_SIZE_PX
from slidestream_samples.tissue_types import TISSUE_TYPES

METRICS: dict[str, object] = {
    "labels": list(TISSUE_TYPES),
    "mean": [0.74, 0.48, 0.82],
    "std": [0.18, 0.26, 0.13],
    "embedding_width": 64,
    "held_out_tiles": 1409,
    "tissue_type": {"held_out_accuracy": 0.97, "per_class": {}},
    "tile_embedding": {"held_out_accuracy": 0.95},
}


def test_the_classifier_card_states_labels_input_and_accuracy() -> None:
    card = model_cards(METRICS)[TISSUE_TYPE_MODEL]
    output = card.output(OutputKind.CLASS_PROBABILITIES)
    assert output is not None
    assert output.labels == TISSUE_TYPES
    assert output.width == len(TISSUE_TYPES)
    assert (card.input.tile_size_px, card.input.mpp_um) == (TILE_SIZE_PX, TILE_MPP_UM)
    assert card.input.mean == (0.74, 0.48, 0.82)
    assert card.input.std == (0.18, 0.26, 0.13)
    assert card.metrics == {"held_out_accuracy": 0.97}
    assert "1409 tiles" in card.description


def test_the_embedding_card_has_its_width_and_no_labels() -> None:
    card = model_cards(METRICS)[TILE_EMBEDDING_MODEL]
    output = card.output(OutputKind.EMBEDDING)
    assert output is not None
    assert (output.width, output.labels) == (64, ())
    assert card.metrics == {"held_out_accuracy": 0.95}


def test_the_cards_survive_their_json() -> None:
    for card in model_cards(METRICS).values():
        assert ModelCardV1.model_validate_json(card.model_dump_json()) == card


def test_the_build_keys_are_stable_and_chained() -> None:
    assert data_key() == data_key()
    assert models_key() == models_key()
    assert len(data_key()) == len(models_key()) == 64
    assert data_key() != models_key()
