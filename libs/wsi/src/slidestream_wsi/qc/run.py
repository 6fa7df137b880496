"""``run_qc``: read the two levels QC needs, measure, judge against the thresholds, draw."""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from slidestream_wsi.qc.analysis import Analysis
from slidestream_wsi.qc.focus import FocusResult, TileReader, measure_focus
from slidestream_wsi.qc.levels import (
    FOCUS_MPP_SLACK,
    FOCUS_TARGET_MPP,
    LevelChoice,
    choose_levels,
    level_mpp,
)
from slidestream_wsi.qc.measure import Measures, measure
from slidestream_wsi.qc.pictures import (
    QcPictures,
    draw_heatmap,
    draw_layers,
    encode_png,
    summary_html,
    usable_tissue_png,
)
from slidestream_wsi.qc.pyramid import PyramidLevel, PyramidSource, SlidePyramid
from slidestream_wsi.qc.report import (
    FocusSummary,
    LevelUse,
    QcMeasureResult,
    QcReport,
    StainVectors,
    worst,
)
from slidestream_wsi.qc.segment import segment
from slidestream_wsi.qc.stain import RUIFROK_EOSIN, RUIFROK_HEMATOXYLIN, angle_deg
from slidestream_wsi.qc.thresholds import QcThresholds

# name → (unit, what it is). Order is the report's order.
MEASURES: dict[str, tuple[str, str]] = {
    "tissue_fraction": ("fraction of slide area", "share of the slide covered by tissue"),
    "tissue_area_mm2": ("mm²", "tissue area"),
    "tissue_fragments": ("count", "separate tissue pieces of at least 0.01 mm²"),
    "blur_fraction": ("fraction of tissue", "tissue in out-of-focus 64 µm patches at ~10x"),
    "pen_fraction": ("fraction of slide area", "marker ink of any colour"),
    "pen_on_tissue_fraction": ("fraction of tissue", "tissue region covered by ink"),
    "pen_blue_fraction": ("fraction of slide area", "blue ink"),
    "pen_green_fraction": ("fraction of slide area", "green ink"),
    "pen_black_fraction": ("fraction of slide area", "black ink"),
    "pen_red_fraction": ("fraction of slide area", "red ink"),
    "fold_fraction": ("fraction of tissue", "folded (double-layer) tissue"),
    "dark_spot_fraction": ("fraction of slide area", "small very dark specks (debris, dust)"),
    "bubble_fraction": ("fraction of slide area", "inside air bubbles under the coverslip"),
    "coverslip_edge_count": ("count", "straight dark edges (coverslip or mounting edge)"),
    "tissue_brightness": ("luminance 0-1", "mean luminance of tissue"),
    "tissue_contrast": ("luminance 0-1", "RMS contrast (standard deviation) of tissue"),
    "tissue_saturation": ("saturation 0-1", "mean HSV saturation of tissue"),
    "tissue_clipped_fraction": ("fraction of tissue", "tissue pixels with a channel at 255"),
    "background_brightness": ("luminance 0-1", "mean luminance of bare glass"),
    "background_unevenness": ("luminance 0-1", "spread of glass luminance over an 8x8 grid"),
    "hematoxylin_angle_deg": ("degrees", "Macenko haematoxylin vector vs Ruifrok's"),
    "eosin_angle_deg": ("degrees", "Macenko eosin vector vs Ruifrok's"),
    "hematoxylin_density": ("optical density", "mean haematoxylin (HED deconvolution)"),
    "eosin_density": ("optical density", "mean eosin (HED deconvolution)"),
}
_STAIN_ANGLES = ("hematoxylin_angle_deg", "eosin_angle_deg")
QC_THREADS = 2
"""Helper threads of one QC call: the focus measure, then the PNG encodes."""


def run_qc(
    source: PyramidSource,
    thresholds: QcThresholds | None = None,
    slide_label: str = "",
) -> tuple[QcReport, QcPictures]:
    """Measure one slide from the levels :func:`levels_needed` names and judge it.

    Focus is measured on a helper thread as soon as the tissue mask exists, while this thread
    takes the other measures and draws; the PNGs are encoded on the helpers too. Tile decoding,
    OpenCV and NumPy release the GIL, so the work overlaps where a second core is free (with
    one CPU, as the chart requests, it runs as before, one piece after the other)."""
    thresholds = thresholds or QcThresholds()
    choice = choose_levels(source.levels)
    rgb = source.read_level(choice.analysis.index)
    mpp = level_mpp(choice.analysis)
    with ThreadPoolExecutor(QC_THREADS, thread_name_prefix="qc") as helpers:
        segmentation = segment(rgb, mpp)
        focus_job: Future[FocusResult] | None = None
        if segmentation.tissue.sum() >= 100:
            focus_job = helpers.submit(
                measure_focus,
                segmentation.tissue,
                choice.focus,
                focus_tile_reader(source, choice, rgb),
                thresholds.blur_defocus_sigma_um,
            )
        analysis = Analysis(segmentation, measure(segmentation, rgb))
        layers = draw_layers(analysis)
        overlay_png = helpers.submit(encode_png, layers.overlay)
        masks_png = helpers.submit(encode_png, layers.masks)
        tissue_png = helpers.submit(usable_tissue_png, analysis)
        focus = focus_job.result() if focus_job is not None else None
        heatmap_png = encode_png(draw_heatmap(layers, focus))
        report = _report(source, choice, analysis, focus, thresholds, slide_label, mpp)
        pictures = QcPictures(
            overlay_png.result(),
            heatmap_png,
            masks_png.result(),
            summary_html(report),
            tissue_png.result(),
        )
    # elapsed_s stays 0.0: the report is stored under a fixed key, and a second handling of
    # the slide must write the bytes its announced event describes (the qc service keeps the
    # time QC took in its decision row, log and metrics).
    return report, pictures


def _report(
    source: PyramidSource,
    choice: LevelChoice,
    analysis: Analysis,
    focus: FocusResult | None,
    thresholds: QcThresholds,
    slide_label: str,
    mpp: float,
) -> QcReport:
    notes = list(analysis.notes)
    if not (choice.analysis.mpp_x or choice.analysis.mpp_y):
        notes.append("the slide gives no pixel spacing: 40x (0.25 µm/px at level 0) assumed")
    if focus is not None and focus.work_mpp > FOCUS_TARGET_MPP * FOCUS_MPP_SLACK:
        notes.append(
            f"focus scored at {focus.work_mpp:.2g} µm/px, the finest level: the calibration "
            f"holds at {FOCUS_TARGET_MPP:g} µm/px, so slight defocus may go unseen"
        )
    taken = analysis.measures
    if focus is not None:
        taken = replace(taken, blur_fraction=focus.blurred_fraction)
    measures = tuple(_judge(taken, thresholds))
    failing = [m for m in measures if m.verdict != "pass"]
    reasons = tuple(
        f"{m.name} = {m.value:.4g} {m.unit}: {m.verdict} (limit {m.threshold:.4g})"
        for m in failing
        if m.threshold is not None
    )
    stain = _stain(analysis, measures, thresholds)
    uses = _level_uses(choice, focus, mpp)
    levels_read = tuple(sorted({use.index for use in uses}))
    return QcReport(
        slide_label=slide_label,
        verdict=worst([m.verdict for m in measures]),
        measures=measures,
        reasons=reasons,
        bytes_read=source.bytes_read,
        total_bytes=source.total_bytes,
        read_fraction=source.bytes_read / source.total_bytes if source.total_bytes else 0.0,
        levels_read=levels_read,
        level_use=tuple(uses),
        stain=stain,
        focus=None if focus is None else _focus_summary(focus),
        notes=tuple(notes),
        elapsed_s=0.0,
    )


def _focus_summary(focus: FocusResult) -> FocusSummary:
    return FocusSummary(
        blurred_fraction=focus.estimate.share,
        ci95_low=focus.estimate.low,
        ci95_high=focus.estimate.high,
        level=focus.level.index,
        mpp=focus.work_mpp,
        tissue_tiles=focus.estimate.units_total,
        tiles_scored=focus.estimate.units_scored,
        patches_scored=focus.patches_scored,
        defocus_sigma_um=focus.defocus_sigma_um,
        score_min=focus.score_min,
    )


def _stain(
    analysis: Analysis, measures: tuple[QcMeasureResult, ...], thresholds: QcThresholds
) -> StainVectors | None:
    if analysis.stain_vectors is None:
        return None
    limits_ok = (
        all(m.verdict == "pass" for m in measures if m.name in _STAIN_ANGLES)
        or not thresholds.expect_he_stain
    )
    return StainVectors(
        hematoxylin=analysis.stain_vectors[0],
        eosin=analysis.stain_vectors[1],
        he_stain_ok=limits_ok and _near_he(analysis, thresholds),
    )


def _level_uses(choice: LevelChoice, focus: FocusResult | None, mpp: float) -> list[LevelUse]:
    uses = [
        LevelUse(
            index=choice.analysis.index,
            purpose="analysis",
            mpp=mpp,
            tiles_read=_tiles(choice.analysis),
            tiles_total=_tiles(choice.analysis),
        )
    ]
    if focus is not None and choice.focus.index != choice.analysis.index:
        uses.append(
            LevelUse(
                index=choice.focus.index,
                purpose="focus",
                mpp=level_mpp(choice.focus),
                tiles_read=focus.tiles_read,
                tiles_total=focus.tiles_total,
            )
        )
    return uses


def _tiles(level: PyramidLevel) -> int:
    columns = -(-level.width_px // level.tile_width_px)
    rows = -(-level.height_px // level.tile_height_px)
    return columns * rows


def _near_he(analysis: Analysis, thresholds: QcThresholds) -> bool:
    if analysis.stain_vectors is None:
        return False
    limit_h = thresholds.hematoxylin_angle_deg_max_warn
    limit_e = thresholds.eosin_angle_deg_max_warn
    return (
        limit_h is None or angle_deg(analysis.stain_vectors[0], RUIFROK_HEMATOXYLIN) <= limit_h
    ) and (limit_e is None or angle_deg(analysis.stain_vectors[1], RUIFROK_EOSIN) <= limit_e)


def focus_tile_reader(
    source: PyramidSource, choice: LevelChoice, analysis_rgb: npt.NDArray[np.uint8]
) -> TileReader:
    """Reads the focus level's tiles at given origins (cut from the analysis image when the
    two levels are one); public so the fast-path tests measure the reader QC uses."""
    focus = choice.focus

    def read(origins: Iterable[tuple[int, int]]) -> list[tuple[int, int, npt.NDArray[np.uint8]]]:
        if focus.index == choice.analysis.index:
            # Already decoded whole: cut the tiles out instead of reading them again.
            return [
                (x, y, analysis_rgb[y : y + focus.tile_height_px, x : x + focus.tile_width_px])
                for x, y in origins
            ]
        if isinstance(source, SlidePyramid):
            # Focus needs luminance only: JPEG tiles decode their Y channel alone.
            return list(source.iter_grey_tiles(focus.index, origins))
        return list(source.iter_tiles(focus.index, origins))

    return read


def _judge(taken: Measures, thresholds: QcThresholds) -> Iterable[QcMeasureResult]:
    values = taken.values()
    for name, (unit, description) in MEASURES.items():
        if name not in values:
            continue
        value = values[name]
        if name in _STAIN_ANGLES and not thresholds.expect_he_stain:
            verdict, threshold = "pass", None
        else:
            verdict, threshold = thresholds.limits_of(name).judge(value)
        yield QcMeasureResult(
            name=name,
            value=value,
            unit=unit,
            threshold=threshold,
            verdict=verdict,
            description=description,
        )
