"""Heat map pictures: one class's tile scores over the slide's thumbnail, as PNG.

Scores (0..1) are coloured with OpenCV's JET map (blue low, red high) and blended half and
half with the thumbnail on the analysed tiles; elsewhere the thumbnail shows as it is. A strip
under the picture says what it shows: the colour scale from 0 to 1 and the class's name.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from slidestream_inference.domain.aggregate import Grid

OVERLAY_ALPHA = 0.5
"""Share of the colour in an analysed tile; the tissue stays visible under it."""
LEGEND_HEIGHT_PX = 28
LEGEND_SCALE_WIDTH_PX = 160
LEGEND_BACKGROUND_RGB = (255, 255, 255)
LEGEND_TEXT_RGB = (40, 40, 40)


def heatmap_png(
    thumbnail: npt.NDArray[np.uint8], grid: Grid, grid_cover: float, caption: str = ""
) -> bytes:
    """``grid`` (rows, columns) over ``thumbnail`` (h, w, 3 RGB); ``grid_cover`` is how much
    wider than the slide the grid is (columns x tile size / level-0 width, ≥ 1). ``caption``
    (the class's name) is written beside the colour scale under the picture."""
    height, width = thumbnail.shape[:2]
    rows, columns = grid.shape
    grid_width = max(1, round(width * grid_cover))
    grid_height = max(1, round(grid_width * rows / columns))
    cells = cv2.resize(grid, (grid_width, grid_height), interpolation=cv2.INTER_NEAREST)
    canvas = np.full((max(height, grid_height), max(width, grid_width)), np.nan, np.float32)
    canvas[:grid_height, :grid_width] = cells
    values = canvas[:height, :width]
    analysed = ~np.isnan(values)
    levels = np.rint(np.clip(np.nan_to_num(values), 0.0, 1.0) * 255).astype(np.uint8)
    colours = cv2.cvtColor(cv2.applyColorMap(levels, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    # Blended everywhere in one pass (rounded as np.rint would), then kept where a tile was
    # analysed: a tenth of the time of blending through a boolean index in float32.
    blended = cv2.addWeighted(thumbnail, 1 - OVERLAY_ALPHA, colours, OVERLAY_ALPHA, 0.0)
    picture = np.where(analysed[..., None], blended, thumbnail).astype(np.uint8)
    picture = np.concatenate([picture, _legend(width, caption)], axis=0)
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("PNG encoding failed")
    return encoded.tobytes()


def _legend(width: int, caption: str) -> npt.NDArray[np.uint8]:
    """A white strip: "0", the JET scale, "1", then the caption (cut to the width)."""
    strip = np.full((LEGEND_HEIGHT_PX, width, 3), LEGEND_BACKGROUND_RGB, np.uint8)
    font, scale, thickness = cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1
    baseline_y = LEGEND_HEIGHT_PX // 2 + 5
    cv2.putText(strip, "0", (4, baseline_y), font, scale, LEGEND_TEXT_RGB, thickness)
    bar_left = 18
    bar_width = max(0, min(LEGEND_SCALE_WIDTH_PX, width - bar_left - 20))
    if bar_width > 0:
        ramp = np.linspace(0, 255, bar_width).astype(np.uint8)[None, :]
        bar = cv2.cvtColor(cv2.applyColorMap(ramp, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
        strip[6 : LEGEND_HEIGHT_PX - 6, bar_left : bar_left + bar_width] = bar
        one_x = bar_left + bar_width + 4
        cv2.putText(strip, "1", (one_x, baseline_y), font, scale, LEGEND_TEXT_RGB, thickness)
        if caption:
            cv2.putText(
                strip, caption, (one_x + 18, baseline_y), font, scale, LEGEND_TEXT_RGB, thickness
            )
    return strip
