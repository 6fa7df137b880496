"""The pixels of the planted samples: small, pink and noisy.

Every layout is 2048 x 1536 at level 0 with 256 px tiles. Tiles are noisy so that JPEG data
dominates the file size, as in real slides.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

LEVEL0_WIDTH_PX = 2048
LEVEL0_HEIGHT_PX = 1536
TILE_PX = 256


def tissue(width: int, height: int, seed: int = 0) -> npt.NDArray[np.uint8]:
    """A pink, noisy image (noise keeps the JPEG tiles large, as real tissue does)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = 180 + 40 * np.sin(xx / 97.0) * np.cos(yy / 73.0)
    noise = rng.integers(-90, 90, size=(height, width, 3))
    rgb = np.stack([base + 30, base - 40, base + 10], axis=-1) + noise
    return np.clip(rgb, 0, 255).astype(np.uint8)


def levels() -> list[npt.NDArray[np.uint8]]:
    """Level 0 and its 2x and 4x subsamples (the pyramid of every planted layout)."""
    level0 = tissue(LEVEL0_WIDTH_PX, LEVEL0_HEIGHT_PX)
    return [level0, level0[::2, ::2].copy(), level0[::4, ::4].copy()]
