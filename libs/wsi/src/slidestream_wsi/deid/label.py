"""A generated replacement label that shows only the pseudonym."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

LABEL_WIDTH_PX = 320
LABEL_HEIGHT_PX = 96
_MARGIN_PX = 12


def pseudonym_label(pseudonym: str) -> npt.NDArray[np.uint8]:
    """An RGB label image, black text on white, with the pseudonym and nothing else."""
    image = Image.new("RGB", (LABEL_WIDTH_PX, LABEL_HEIGHT_PX), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=18)
    draw.text((_MARGIN_PX, LABEL_HEIGHT_PX // 2 - 10), pseudonym, fill="black", font=font)
    return np.asarray(image, dtype=np.uint8)
