"""Normalisation of tiles into the card's input tensor, and the check of the model's answers."""

from __future__ import annotations

import numpy as np
import pytest

from slidestream_inference.domain.tensors import (
    OutputContradictsCardError,
    checked_outputs,
    normalise,
    request_batch_size,
)
from tests.support.inference import model_card


def test_tiles_become_nchw_float32_scaled_and_standardised_per_channel() -> None:
    card = model_card(
        input={
            "tile_size_px": 128,
            "mpp_um": 1.0,
            "mean": [0.5, 0.25, 0.0],
            "std": [0.5, 0.25, 2.0],
        }
    )
    pixels = np.zeros((2, 128, 128, 3), np.uint8)
    pixels[..., 0], pixels[..., 1], pixels[..., 2] = 255, 51, 102
    tensor = normalise(pixels, card.input)
    assert tensor.shape == (2, 3, 128, 128) and tensor.dtype == np.float32
    assert tensor.flags.c_contiguous
    np.testing.assert_allclose(tensor[:, 0], (1.0 - 0.5) / 0.5)
    np.testing.assert_allclose(tensor[:, 1], (0.2 - 0.25) / 0.25, rtol=1e-6)
    np.testing.assert_allclose(tensor[:, 2], (0.4 - 0.0) / 2.0, rtol=1e-6)


def test_bgr_models_get_their_channels_reversed() -> None:
    card = model_card(input={"tile_size_px": 16, "mpp_um": 1.0, "channel_order": "BGR"})
    pixels = np.zeros((1, 16, 16, 3), np.uint8)
    pixels[..., 0] = 255  # red
    tensor = normalise(pixels, card.input)
    assert tensor[0, 2].min() == 1.0 and tensor[0, 0].max() == 0.0


def test_requests_carry_the_largest_preferred_batch_the_model_accepts() -> None:
    assert request_batch_size(model_card(max_batch_size=32, preferred_batch_sizes=[8, 16])) == 16
    assert request_batch_size(model_card(max_batch_size=6, preferred_batch_sizes=[])) == 6


def test_a_deployment_may_choose_the_request_size_up_to_the_models_maximum() -> None:
    card = model_card(max_batch_size=32, preferred_batch_sizes=[8, 16])
    assert request_batch_size(card, 8) == 8
    assert request_batch_size(card, 64) == 32


def answer(batch: int) -> dict[str, np.ndarray | None]:
    return {
        "PROBS": np.full((batch, 2), 0.5, np.float32),
        "EMBED": np.zeros((batch, 3), np.float32),
    }


def test_answers_as_declared_pass() -> None:
    checked = checked_outputs(model_card(), answer(4), 4)
    assert set(checked) == {"PROBS", "EMBED"} and checked["PROBS"].shape == (4, 2)


@pytest.mark.parametrize(
    ("name", "lie", "says"),
    [
        ("PROBS", np.zeros((4, 3), np.float32), "shape [4, 3], the card declares [4, 2]"),
        ("PROBS", np.zeros((3, 2), np.float32), "shape [3, 2]"),
        ("EMBED", np.zeros((4, 3), np.float64), "dtype float64, the card declares FP32"),
        ("EMBED", None, "missing"),
    ],
)
def test_a_shape_or_dtype_the_card_does_not_declare_is_a_lie(
    name: str, lie: np.ndarray | None, says: str
) -> None:
    answered = {**answer(4), name: lie}
    with pytest.raises(OutputContradictsCardError) as caught:
        checked_outputs(model_card(), answered, 4)
    assert caught.value.reason == "model-output-shape"
    assert name in str(caught.value) and says in str(caught.value)


def test_non_finite_numbers_are_refused_with_their_own_reason() -> None:
    answered = answer(2)
    answered["PROBS"] = np.array([[np.nan, 1], [0, 1]], np.float32)
    with pytest.raises(OutputContradictsCardError) as caught:
        checked_outputs(model_card(), answered, 2)
    assert caught.value.reason == "model-output-values"
