"""Tiles in, tensors out, as the model card says: normalisation of the input batch and the
check of what the model returned.

Input (``ModelInputV1``): ``[batch, 3, S, S]`` float32, NCHW, each channel in the card's
``channel_order`` as ``(pixel / 255 - mean) / std``. Outputs (``ModelOutputV1``):
``[batch, width]`` for class probabilities and embeddings, ``[batch, width, size_px, size_px]``
for segmentation, in the declared dtype. A model that answers anything else contradicts its
card: its outputs cannot be trusted, on this slide or any other.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from slidestream_contracts.model_card import (
    ChannelOrder,
    ModelCardV1,
    ModelInputV1,
    ModelOutputV1,
    OutputKind,
)

Rgb = npt.NDArray[np.uint8]
Tensor = npt.NDArray[np.float32]
PIXEL_MAX = 255.0
NUMPY_DTYPE: dict[str, np.dtype[np.floating[Any]]] = {
    "FP32": np.dtype(np.float32),
    "FP16": np.dtype(np.float16),
}


class OutputContradictsCardError(ValueError):
    """The model answered a shape or dtype its card does not declare (``model-output-shape``),
    or numbers no probability or embedding can be (``model-output-values``)."""

    def __init__(self, message: str, *, reason: str = "model-output-shape") -> None:
        super().__init__(message)
        self.reason = reason


def normalise(pixels: Rgb, model_input: ModelInputV1) -> Tensor:
    """``(N, S, S, 3)`` RGB tiles → the model's ``(N, 3, S, S)`` float32 input."""
    if pixels.ndim != 4 or pixels.shape[3] != 3:
        raise ValueError("tiles must be (N, S, S, 3) RGB")
    channels = pixels[..., ::-1] if model_input.channel_order is ChannelOrder.BGR else pixels
    # Planar first, while a pixel is one byte, then the arithmetic in place on contiguous
    # float32: a tenth of the time of scaling NHWC and transposing the floats (one strided
    # copy of four times the bytes, and three temporaries), the same operations in the same
    # order, so the same numbers.
    tensor = np.ascontiguousarray(channels.transpose(0, 3, 1, 2)).astype(np.float32)
    tensor /= np.float32(PIXEL_MAX)
    tensor -= np.asarray(model_input.mean, np.float32)[:, None, None]
    tensor /= np.asarray(model_input.std, np.float32)[:, None, None]
    return tensor


def request_batch_size(card: ModelCardV1, wanted: int | None = None) -> int:
    """Tiles per request: ``wanted`` (a deployment's choice) up to the model's maximum batch,
    else the largest preferred batch the model accepts (Triton's dynamic batcher merges
    concurrent requests up to its own maximum)."""
    if wanted is not None:
        return max(1, min(wanted, card.max_batch_size))
    preferred = [size for size in card.preferred_batch_sizes if size <= card.max_batch_size]
    return max(preferred, default=card.max_batch_size)


def expected_shape(output: ModelOutputV1, batch: int) -> tuple[int, ...]:
    if output.kind is OutputKind.SEGMENTATION:
        assert output.size_px is not None  # the card's validator requires it for segmentation
        return (batch, output.width, output.size_px, output.size_px)
    return (batch, output.width)


def checked_outputs(
    card: ModelCardV1, answered: Mapping[str, np.ndarray | None], batch: int
) -> dict[str, np.ndarray]:
    """Each declared output of a ``batch``-tile request, as declared, or
    :class:`OutputContradictsCardError` saying which output differs and how."""
    checked: dict[str, np.ndarray] = {}
    for output in card.outputs:
        array = answered.get(output.name)
        if array is None:
            raise OutputContradictsCardError(f"output {output.name}: missing from the answer")
        shape = expected_shape(output, batch)
        if tuple(array.shape) != shape:
            raise OutputContradictsCardError(
                f"output {output.name}: shape {list(array.shape)}, the card declares {list(shape)}"
            )
        if array.dtype != NUMPY_DTYPE[output.dtype]:
            raise OutputContradictsCardError(
                f"output {output.name}: dtype {array.dtype}, the card declares {output.dtype}"
            )
        if not np.all(np.isfinite(array)):
            raise OutputContradictsCardError(
                f"output {output.name}: NaN or infinite values", reason="model-output-values"
            )
        checked[output.name] = array
    return checked
