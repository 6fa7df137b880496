"""Boolean masks on the working image: sizes in µm turned into pixels, structuring elements,
small components dropped, holes filled, and percentiles of grey levels under a mask."""

from __future__ import annotations

import math

import cv2
import numpy as np
import numpy.typing as npt

BoolMask = npt.NDArray[np.bool_]
UInt8Image = npt.NDArray[np.uint8]


def px_of_um(length_um: float, mpp_um: float) -> int:
    return max(1, round(length_um / mpp_um))


def px_of_mm2(area_mm2: float, mpp_um: float) -> int:
    return max(1, round(area_mm2 * 1e6 / (mpp_um * mpp_um)))


def disk(radius_px: int) -> npt.NDArray[np.uint8]:
    size = 2 * radius_px + 1
    return np.asarray(cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)), np.uint8)


def square(radius_px: int) -> npt.NDArray[np.uint8]:
    return np.ones((2 * radius_px + 1, 2 * radius_px + 1), np.uint8)


def as_u8(image: object) -> UInt8Image:
    """An OpenCV result as the uint8 array it is (OpenCV's stubs type results loosely)."""
    return np.asarray(image, dtype=np.uint8)


def as_f32(image: object) -> npt.NDArray[np.float32]:
    return np.asarray(image, dtype=np.float32)


def drop_small(mask: BoolMask, min_area_px: int) -> tuple[BoolMask, int]:
    """The mask without components smaller than ``min_area_px``, and how many remain."""
    if not mask.any():
        return np.zeros_like(mask, dtype=np.bool_), 0
    # Labels alone, areas by counting: OpenCV's ...WithStats costs several times more.
    count, labels = cv2.connectedComponents(mask.view(np.uint8), connectivity=8)
    areas = np.bincount(labels.ravel(), minlength=count)
    keep = areas >= min_area_px
    keep[0] = False
    kept = int(keep.sum())
    if kept == count - 1:
        return np.array(mask, dtype=np.bool_), kept
    return np.asarray(keep[labels], dtype=np.bool_), kept


def fill_holes(mask: BoolMask, max_hole_px: int) -> BoolMask:
    """The mask with its holes filled: background pieces of at most ``max_hole_px`` that it
    encloses (a piece touching the image's border is outside, not a hole)."""
    background = ~mask
    # 4-connected background against 8-connected objects (the usual digital-topology pairing).
    count, labels = cv2.connectedComponents(background.view(np.uint8), connectivity=4)
    areas = np.bincount(labels.ravel(), minlength=count)
    hole = areas <= max_hole_px
    hole[0] = False  # label 0 is the mask itself
    border = np.concatenate((labels[0], labels[-1], labels[:, 0], labels[:, -1]))
    hole[border] = False
    if not hole.any():
        return np.array(mask, dtype=np.bool_)
    return np.asarray(mask | hole[labels], dtype=np.bool_)


def grey_percentile(grey: UInt8Image, mask: BoolMask | None, percent: float) -> float:
    """``np.percentile(grey[mask] / 255, percent)`` (linear interpolation) from the 256-bin
    histogram: a grey level takes 256 values, so counting beats sorting the pixels."""
    counts = cv2.calcHist(
        [np.ascontiguousarray(grey)],
        [0],
        None if mask is None else np.ascontiguousarray(mask).view(np.uint8),
        [256],
        [0, 256],
    ).ravel()
    cumulative = np.cumsum(counts.astype(np.int64))
    total = int(cumulative[-1])
    if total == 0:
        raise ValueError("percentile of no pixels")
    position = percent / 100 * (total - 1)
    below = math.floor(position)
    # The k-th smallest value (0-based) is the first level whose cumulative count exceeds k.
    low = int(np.searchsorted(cumulative, below, side="right"))
    high = int(np.searchsorted(cumulative, min(below + 1, total - 1), side="right"))
    return (low + (position - below) * (high - low)) / 255
