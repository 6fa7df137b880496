"""From per-tile model outputs to what a slide's run keeps: the score per tile and class, the
heat map grid, the slide summary, the tile embeddings and the slide embedding.

Scores come from the card's first class-probability output, else from its first segmentation
output (each class's mean over the tile's pixels); the embedding from its first embedding
output. Batches may finish in any order: each is put at its position in the tile plan.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from slidestream_contracts.model_card import ModelCardV1, ModelOutputV1, OutputKind

Grid = npt.NDArray[np.float32]
"""(rows, columns) of level-0 tiles; NaN where no tile was analysed."""


def score_output(card: ModelCardV1) -> ModelOutputV1 | None:
    return card.output(OutputKind.CLASS_PROBABILITIES) or card.output(OutputKind.SEGMENTATION)


def tile_scores(output: ModelOutputV1, values: np.ndarray) -> npt.NDArray[np.float32]:
    """(n, classes) per tile: the probabilities, or a segmentation map's per-class mean."""
    if output.kind is OutputKind.SEGMENTATION:
        return np.asarray(values.astype(np.float32).mean(axis=(2, 3)), np.float32)
    return np.asarray(values, np.float32)


class SlideOutputs:
    """The outputs of one run's ``tile_count`` tiles, filled batch by batch."""

    def __init__(self, card: ModelCardV1, tile_count: int) -> None:
        self.tile_count = tile_count
        self.scores_output = score_output(card)
        self.embedding_output = card.output(OutputKind.EMBEDDING)
        self.scores = (
            np.zeros((tile_count, self.scores_output.width), np.float32)
            if self.scores_output is not None
            else None
        )
        self.embeddings = (
            np.zeros((tile_count, self.embedding_output.width), np.float16)
            if self.embedding_output is not None
            else None
        )
        self._embedding_sum = (
            np.zeros(self.embedding_output.width, np.float64)
            if self.embedding_output is not None
            else None
        )
        self._filled = np.zeros(tile_count, bool)

    @property
    def labels(self) -> tuple[str, ...]:
        return self.scores_output.labels if self.scores_output is not None else ()

    def put(self, start: int, outputs: Mapping[str, np.ndarray]) -> None:
        """A checked batch of tiles ``start`` to ``start + n - 1`` (plan order)."""
        count = next(iter(outputs.values())).shape[0]
        stop = start + count
        if start < 0 or stop > self.tile_count or self._filled[start:stop].any():
            raise ValueError(f"tiles {start}..{stop - 1} are off the plan or were put before")
        if self.scores_output is not None and self.scores is not None:
            self.scores[start:stop] = tile_scores(
                self.scores_output, outputs[self.scores_output.name]
            )
        if self.embedding_output is not None and self.embeddings is not None:
            values = outputs[self.embedding_output.name].astype(np.float64)
            self.embeddings[start:stop] = values.astype(np.float16)
            assert self._embedding_sum is not None
            self._embedding_sum += values.sum(axis=0)
        self._filled[start:stop] = True

    @property
    def complete(self) -> bool:
        return bool(self._filled.all())

    def slide_embedding(self) -> npt.NDArray[np.float32] | None:
        """The mean tile embedding (from the full-precision outputs); ``None`` without tiles."""
        if self._embedding_sum is None or self.tile_count == 0:
            return None
        return np.asarray(self._embedding_sum / self.tile_count, np.float32)

    def summary(self) -> dict[str, float]:
        """``fraction:<label>`` (share of tiles where it scores highest), ``mean:<label>``,
        ``max:<label>``; empty without tiles or scores."""
        if self.scores is None or self.tile_count == 0:
            return {}
        winners = self.scores.argmax(axis=1)
        summary: dict[str, float] = {}
        for index, label in enumerate(self.labels):
            column = self.scores[:, index]
            summary[f"fraction:{label}"] = float(np.mean(winners == index))
            summary[f"mean:{label}"] = float(column.mean())
            summary[f"max:{label}"] = float(column.max())
        return summary


def heat_grid(
    origins_px: npt.NDArray[np.int64],
    values: npt.NDArray[np.float32],
    tile_size_l0_px: float,
    level0_size_px: tuple[int, int],
) -> Grid:
    """One tile's value per cell of the level-0 tile grid (``width``, ``height`` of level 0)."""
    columns = max(1, math.ceil(level0_size_px[0] / tile_size_l0_px))
    rows = max(1, math.ceil(level0_size_px[1] / tile_size_l0_px))
    grid = np.full((rows, columns), np.nan, np.float32)
    if len(origins_px):
        cells = np.rint(origins_px / tile_size_l0_px).astype(np.int64)
        cells[:, 0] = np.clip(cells[:, 0], 0, columns - 1)
        cells[:, 1] = np.clip(cells[:, 1], 0, rows - 1)
        grid[cells[:, 1], cells[:, 0]] = values
    return grid
