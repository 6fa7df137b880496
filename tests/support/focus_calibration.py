"""The focus score of the generator's H&E tissue at graded defocus: the patches of the QC
benchmark's seed tiles (:mod:`slidestream_samples.qc_bench`, painted at 1 µm/px, blurred, sensor
noise added, JPEG) scored exactly as QC scores a tissue tile."""

from __future__ import annotations

import cv2
import imagecodecs
import numpy as np
import numpy.typing as npt

from slidestream_samples.qc_bench import DefocusKind, seed_tiles
from slidestream_wsi.qc.focus import PatchScores, score_patches

CALIBRATION_MPP = 1.0
SEEDS = (1, 2, 3)


def scored_patches(defocus_um: float, kind: DefocusKind = "gaussian") -> list[PatchScores]:
    """Every patch of the blurred seed tiles (``defocus_um`` 0: the sharp tissue tiles)."""
    scores = []
    for seed in SEEDS:
        tiles = seed_tiles(CALIBRATION_MPP, seed, max(defocus_um, 0.1), kind)
        for encoded in tiles["tissue" if defocus_um == 0 else "blurred"]:
            rgb = imagecodecs.jpeg8_decode(encoded)
            grey = np.asarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), np.uint8)
            ones = np.ones(grey.shape, np.uint8)
            grid = (grey.shape[1] // 64, grey.shape[0] // 64)
            scores.append(score_patches(grey, ones, ones, grid))
    return scores


def patch_energies(defocus_um: float, kind: DefocusKind = "gaussian") -> npt.NDArray[np.float32]:
    return np.concatenate([p.energy.ravel() for p in scored_patches(defocus_um, kind)])


def patch_anisotropies(
    defocus_um: float, kind: DefocusKind = "gaussian"
) -> npt.NDArray[np.float32]:
    return np.concatenate([p.anisotropy.ravel() for p in scored_patches(defocus_um, kind)])
