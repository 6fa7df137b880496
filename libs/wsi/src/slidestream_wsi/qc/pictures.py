"""The pictures of a QC report: overlay, blur heat map and artefact masks as PNG, and a one-page
HTML summary that refers to them by relative file name (they are stored side by side)."""

from __future__ import annotations

import html
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from slidestream_wsi.qc.analysis import Analysis
from slidestream_wsi.qc.focus import FocusResult
from slidestream_wsi.qc.report import QcReport

OVERLAY_PNG = "overlay.png"
HEATMAP_PNG = "heatmap.png"
MASKS_PNG = "masks.png"
TISSUE_MASK_PNG = "tissue-mask.png"
USABLE_TISSUE_GREY = 255
"""Grey value of usable tissue in :data:`TISSUE_MASK_PNG` (everything else is 0)."""
PICTURE_LONG_SIDE_PX = 1024
"""Longest side of every picture: the working image (about 16 µm/px, HistoQC's 0.625x, at
least 768 px on its long side), shrunk if larger."""

# RGB colours of the overlay and mask picture, also listed in the HTML legend.
LEGEND: dict[str, tuple[int, int, int]] = {
    "tissue outline": (0, 160, 0),
    "ink": (255, 0, 255),
    "fold": (255, 140, 0),
    "dark spot": (220, 0, 0),
    "air bubble": (0, 200, 255),
    "coverslip edge": (255, 220, 0),
}
_VERDICT_COLOURS = {"pass": "#1a7f37", "warn": "#9a6700", "fail": "#cf222e"}


@dataclass(frozen=True, slots=True)
class QcPictures:
    overlay_png: bytes
    """The analysis level with the tissue outline and every artefact mask over it."""
    heatmap_png: bytes
    """Focus score per tile (red = out of focus, green = sharp) over the tissue."""
    masks_png: bytes
    """The artefact masks alone, one colour each, on black."""
    html: str
    """A one-page summary referring to the PNGs as overlay.png, heatmap.png, masks.png."""
    tissue_mask_png: bytes
    """Usable tissue (tissue less every artefact) at the analysis level's full size, greyscale:
    what inference tiles over."""

    def files(self) -> dict[str, bytes]:
        """File name → content, ready to store side by side."""
        return {
            OVERLAY_PNG: self.overlay_png,
            HEATMAP_PNG: self.heatmap_png,
            MASKS_PNG: self.masks_png,
            TISSUE_MASK_PNG: self.tissue_mask_png,
            "report.html": self.html.encode(),
        }


def usable_tissue_png(analysis: Analysis) -> bytes:
    """The tissue mask less ink, folds, dark spots, bubbles and coverslip edges, full size (a
    bilevel PNG compresses to a few kilobytes)."""
    usable = analysis.tissue.copy()
    for _name, mask in _mask_layers(analysis):
        usable &= ~mask
    grey = np.where(usable, USABLE_TISSUE_GREY, 0).astype(np.uint8)
    ok, encoded = cv2.imencode(".png", grey)
    if not ok:
        raise ValueError("PNG encoding failed")
    return encoded.tobytes()


def encode_png(rgb: npt.NDArray[np.uint8]) -> bytes:
    # The "up" filter alone: smaller files than the adaptive choice here, and a sixth faster.
    ok, encoded = cv2.imencode(
        ".png",
        cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
        [cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_UP],
    )
    if not ok:
        raise ValueError("PNG encoding failed")
    return encoded.tobytes()


def _shrink(image: npt.NDArray[np.uint8], interpolation: int) -> npt.NDArray[np.uint8]:
    height, width = image.shape[:2]
    scale = min(1.0, PICTURE_LONG_SIDE_PX / max(height, width))
    if scale == 1.0:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(cv2.resize(image, size, interpolation=interpolation), np.uint8)


def _mask_layers(analysis: Analysis) -> list[tuple[str, npt.NDArray[np.bool_]]]:
    edges = np.zeros(analysis.tissue.shape, np.uint8)
    for edge in analysis.coverslip_edges:
        cv2.line(edges, (edge.x0, edge.y0), (edge.x1, edge.y1), 1, 3)
    return [
        ("ink", analysis.pen_any),
        ("fold", analysis.fold),
        ("dark spot", analysis.dark_spot),
        ("air bubble", analysis.bubble),
        ("coverslip edge", edges > 0),
    ]


@dataclass(frozen=True, slots=True)
class Layers:
    """The pictures that need no focus result, and what the heat map is drawn over."""

    base: npt.NDArray[np.uint8]
    """The working image (:attr:`Analysis.image`), shrunk to :data:`PICTURE_LONG_SIDE_PX`."""
    tissue: npt.NDArray[np.bool_]
    """The tissue mask at the size of :attr:`base`."""
    overlay: npt.NDArray[np.uint8]
    masks: npt.NDArray[np.uint8]


def draw_layers(analysis: Analysis) -> Layers:
    """The overlay (slide, tissue outline, artefact masks) and the masks picture."""
    base = _shrink(analysis.image, cv2.INTER_AREA)
    size = (base.shape[1], base.shape[0])
    same_size = base.shape[:2] == analysis.tissue.shape

    def fit(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
        if same_size:
            return mask
        return cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0

    overlay = base.copy()
    masks = np.zeros_like(base)
    for name, mask in _mask_layers(analysis):
        if not mask.any():
            continue
        small = fit(mask)
        colour = np.asarray(LEGEND[name], np.float32)
        overlay[small] = (0.5 * overlay[small] + 0.5 * colour).astype(np.uint8)
        masks[small] = LEGEND[name]
    tissue_fit = fit(analysis.tissue)
    contours, _ = cv2.findContours(
        tissue_fit.view(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
    )
    cv2.drawContours(overlay, contours, -1, LEGEND["tissue outline"], 2)
    cv2.drawContours(masks, contours, -1, LEGEND["tissue outline"], 1)
    return Layers(base, tissue_fit, overlay, masks)


def draw_heatmap(layers: Layers, focus: FocusResult | None) -> npt.NDArray[np.uint8]:
    """The focus margin of every scored patch over the slide washed out to half contrast: the
    very patches the blurred share is computed from; tissue not scored stays uncoloured."""
    base = layers.base
    size = (base.shape[1], base.shape[0])
    heat = np.asarray(cv2.convertScaleAbs(base, alpha=0.5, beta=127), np.uint8)
    if focus is None or not focus.scores.size:
        return heat
    scores = focus.scores
    known = ~np.isnan(scores)
    # Red out of focus, green sharp: the margin (1 at the limit) halved and capped, so the
    # limit is the colour's midpoint.
    ratio = np.clip(np.nan_to_num(scores, nan=0.0) / 2, 0, 1)
    cells = np.zeros((*scores.shape, 3), np.uint8)
    cells[..., 0] = (255 * (1 - ratio)).astype(np.uint8)
    cells[..., 1] = (255 * ratio).astype(np.uint8)
    grid_size = focus.grid_size_px(size)
    grid = np.asarray(cv2.resize(cells, grid_size, interpolation=cv2.INTER_NEAREST), np.uint8)[
        : size[1], : size[0]
    ]
    known_px = np.asarray(
        cv2.resize(known.astype(np.uint8), grid_size, interpolation=cv2.INTER_NEAREST),
        np.uint8,
    )
    covered = known_px[: size[1], : size[0]] > 0
    rows, columns = int(covered.shape[0]), int(covered.shape[1])
    region = covered & layers.tissue[:rows, :columns]
    heat_view = heat[:rows, :columns]
    blended = cv2.addWeighted(heat_view, 0.35, grid[:rows, :columns], 0.65, 0.0)
    np.copyto(heat_view, np.asarray(blended, np.uint8), where=region[:, :, None])
    return heat


def _focus_line(report: QcReport) -> str:
    focus = report.focus
    if focus is None:
        return ""
    return (
        f"<p>Blurred share of tissue {focus.blurred_fraction:.1%} (95 % interval "
        f"{focus.ci95_low:.1%}–{focus.ci95_high:.1%}): {focus.patches_scored:,} patches of "
        f"64 µm in {focus.tiles_scored:,} of {focus.tissue_tiles:,} tissue tiles at "
        f"{focus.mpp:.2g} µm/px (level {focus.level}); out of focus from a defocus of "
        f"σ = {focus.defocus_sigma_um:g} µm.</p>"
    )


def summary_html(report: QcReport) -> str:
    rows = "\n".join(
        f"<tr><td>{html.escape(m.name)}</td><td>{m.value:.4g}</td><td>{html.escape(m.unit)}</td>"
        f"<td>{'' if m.threshold is None else f'{m.threshold:.4g}'}</td>"
        f'<td style="color:{_VERDICT_COLOURS[m.verdict]}"><b>{m.verdict}</b></td></tr>'
        for m in report.measures
    )
    reasons = "".join(f"<li>{html.escape(reason)}</li>" for reason in report.reasons)
    notes = "".join(f"<li>{html.escape(note)}</li>" for note in report.notes)
    legend = " ".join(
        f'<span style="color:rgb{colour}">■</span> {html.escape(name)}'
        for name, colour in LEGEND.items()
    )
    title = html.escape(report.slide_label or "slide")
    verdict_colour = _VERDICT_COLOURS[report.verdict]
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>QC: {title}</title>
<style>body{{font-family:sans-serif;margin:1.5em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 8px;text-align:left}}img{{max-width:32%}}</style>
</head><body>
<h1>QC: {title} — <span style="color:{verdict_colour}">{report.verdict.upper()}</span></h1>
<p>Schema {html.escape(report.schema_version)}. Read {report.bytes_read:,} of
{report.total_bytes:,} bytes ({report.read_fraction:.2%}), levels {list(report.levels_read)}.</p>
<ul>{reasons}</ul>
<p><img src="{OVERLAY_PNG}" alt="overlay"> <img src="{HEATMAP_PNG}" alt="focus heat map">
<img src="{MASKS_PNG}" alt="artefact masks"></p>
<p>{legend}; heat map: green sharp, red out of focus, uncoloured tissue not scored.</p>
{_focus_line(report)}
<table><tr><th>measure</th><th>value</th><th>unit</th><th>threshold</th><th>verdict</th></tr>
{rows}
</table>
<ul>{notes}</ul>
</body></html>
"""
