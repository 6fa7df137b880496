"""Label and macro images with the planted name, accession and barcode drawn in."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

from slidestream_samples.phi import LABEL_TOKENS, TOKENS


def text_image(width: int, height: int, lines: list[str]) -> npt.NDArray[np.uint8]:
    """A label-like image with text drawn on it (Pillow ImageDraw)."""
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=16)
    for index, line in enumerate(lines):
        draw.text((8, 8 + 22 * index), line, fill="black", font=font)
    return np.array(image, dtype=np.uint8)


def label_image() -> npt.NDArray[np.uint8]:
    return text_image(300, 100, [TOKENS[k] for k in LABEL_TOKENS])


def macro_image() -> npt.NDArray[np.uint8]:
    image = text_image(360, 120, [TOKENS[k] for k in LABEL_TOKENS])
    image[:, 280:] = 200
    return image
