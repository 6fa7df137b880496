"""Level choice from metadata, tenant thresholds, the versioned report and its pictures."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from slidestream_wsi.errors import PyramidLevelError, QcThresholdsError
from slidestream_wsi.qc import (
    HEATMAP_PNG,
    MASKS_PNG,
    OVERLAY_PNG,
    TISSUE_MASK_PNG,
    PyramidLevel,
    QcReport,
    QcThresholds,
    levels_needed,
    report_json_schema,
)
from slidestream_wsi.qc.pictures import PICTURE_LONG_SIDE_PX
from tests.support.qc import QcCase

SCHEMA_FILE = (
    Path(__file__).resolve().parents[4] / "docs" / "schemas" / "reports" / "qc-report.v1.json"
)


def pyramid_of(width: int, height: int, mpp: float | None, count: int) -> list[PyramidLevel]:
    return [
        PyramidLevel(
            i,
            width >> i,
            height >> i,
            mpp * 2**i if mpp else None,
            mpp * 2**i if mpp else None,
            float(2**i),
            256,
            256,
        )
        for i in range(count)
    ]


def test_levels_of_a_40x_slide() -> None:
    levels = pyramid_of(50_000, 40_000, 0.25, 9)
    # 1.25x (8 µm/px, 1562 px wide) for the analysis, 10x (1 µm/px) for focus.
    assert levels_needed(levels) == (2, 5)


def test_levels_work_on_the_downloaded_subset_alone() -> None:
    levels = pyramid_of(50_000, 40_000, 0.25, 9)
    subset = [levels[i] for i in levels_needed(levels)]
    assert levels_needed(subset) == (2, 5)


def test_levels_without_spacing_assume_40x() -> None:
    assert levels_needed(pyramid_of(50_000, 40_000, None, 9)) == (2, 5)


def test_small_biopsy_keeps_enough_pixels() -> None:
    # A 20x scan of a 4 x 3 mm field: the 8 µm level is only 512 px wide, so 4 µm is used;
    # focus at 1 µm/px (level 1).
    levels = pyramid_of(8_192, 6_144, 0.5, 6)
    assert levels_needed(levels) == (1, 3)


def test_a_single_huge_level_is_refused() -> None:
    with pytest.raises(PyramidLevelError):
        levels_needed(pyramid_of(100_000, 80_000, 0.25, 1))
    with pytest.raises(PyramidLevelError):
        levels_needed([])


def test_thresholds_from_tenant_mapping() -> None:
    strict = QcThresholds.from_mapping({"blur_fraction_max_warn": 0.05, "expect_he_stain": False})
    assert strict.blur_fraction_max_warn == 0.05
    assert strict.blur_fraction_max_fail == QcThresholds().blur_fraction_max_fail
    for bad in (
        {"blur_fraction_max_wran": 0.2},
        {"blur_fraction_max_warn": "a lot"},
        {"blur_fraction_max_warn": 0.5, "blur_fraction_max_fail": 0.3},
        {"tissue_area_mm2_min_warn": 0.01, "tissue_area_mm2_min_fail": 0.5},
    ):
        with pytest.raises(QcThresholdsError):
            QcThresholds.from_mapping(bad)


def test_limits_judge_both_directions() -> None:
    limits = QcThresholds().limits_of("tissue_brightness")
    assert limits.judge(0.6) == ("pass", 0.85)
    assert limits.judge(0.3) == ("warn", 0.35)
    assert limits.judge(0.1) == ("fail", 0.2)
    assert limits.judge(0.9) == ("warn", 0.85)
    assert limits.judge(0.95) == ("fail", 0.93)
    assert QcThresholds().limits_of("pen_red_fraction").judge(0.5) == ("pass", None)


def test_tenant_thresholds_change_the_verdict(qc_case: Callable[[str], QcCase]) -> None:
    from slidestream_wsi.qc import open_tiff_pyramid, run_qc

    case = qc_case("blur60")
    lenient = QcThresholds.from_mapping(
        {"blur_fraction_max_warn": 0.8, "blur_fraction_max_fail": 0.9}
    )
    with open_tiff_pyramid(case.path) as source:
        report, _ = run_qc(source, lenient)
    assert report.measure("blur_fraction").verdict == "pass"
    assert case.report.measure("blur_fraction").verdict == "fail"


def test_report_json_round_trip_and_units(qc_case: Callable[[str], QcCase]) -> None:
    report = qc_case("pen_blue").report
    data = json.loads(report.to_json())
    assert data["schema_version"] == "qc-report.v1"
    assert QcReport.model_validate_json(report.to_json()) == report
    for measure in report.measures:
        assert measure.unit
        assert measure.verdict in ("pass", "warn", "fail")
    names = {m.name for m in report.measures}
    assert {"tissue_area_mm2", "blur_fraction", "pen_fraction", "fold_fraction"} <= names
    assert {"bubble_fraction", "tissue_brightness", "hematoxylin_angle_deg"} <= names
    # Every warn or fail measure has its reason line.
    assert len(report.reasons) == sum(m.verdict != "pass" for m in report.measures)


def test_a_second_run_writes_the_same_bytes(qc_case: Callable[[str], QcCase]) -> None:
    """The report and pictures are stored under fixed keys: a second handling of the slide (a
    redelivery, a consumer evicted mid-QC that finishes anyway) must write the very bytes the
    announced event describes — nothing in them may depend on the run (no timing)."""
    from slidestream_wsi.qc import open_tiff_pyramid, run_qc

    case = qc_case("clean")
    with open_tiff_pyramid(case.path) as source:
        report, pictures = run_qc(source, slide_label="clean")
    assert report.to_json() == case.report.to_json()
    assert pictures == case.pictures


def test_published_schema_is_current() -> None:
    assert SCHEMA_FILE.exists(), "run write_report_schema(docs/schemas/reports/qc-report.v1.json)"
    assert json.loads(SCHEMA_FILE.read_text()) == report_json_schema()


def test_pictures_and_html(qc_case: Callable[[str], QcCase]) -> None:
    case = qc_case("pen_blue")
    pictures = case.pictures
    for png in (pictures.overlay_png, pictures.heatmap_png, pictures.masks_png):
        image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
        # The working image (about 16 µm/px), at most PICTURE_LONG_SIDE_PX on its long side.
        assert image is not None and image.shape[:2] == case.analysis.image.shape[:2]
        assert 768 <= max(image.shape[:2]) <= PICTURE_LONG_SIDE_PX
    masks = cv2.imdecode(np.frombuffer(pictures.masks_png, np.uint8), cv2.IMREAD_COLOR)
    ink_bgr = np.array([255, 0, 255])
    ink_share = float(np.all(masks == ink_bgr, axis=2).mean())
    assert ink_share == pytest.approx(case.value("pen_fraction"), abs=0.02)
    for name in (OVERLAY_PNG, HEATMAP_PNG, MASKS_PNG):
        assert f'src="{name}"' in pictures.html
    assert "pen_fraction" in pictures.html and case.report.verdict.upper() in pictures.html
    assert set(pictures.files()) == {
        OVERLAY_PNG,
        HEATMAP_PNG,
        MASKS_PNG,
        TISSUE_MASK_PNG,
        "report.html",
    }
    # Usable tissue: the tissue mask less the ink, full size, for inference to tile over.
    usable = cv2.imdecode(np.frombuffer(pictures.tissue_mask_png, np.uint8), cv2.IMREAD_UNCHANGED)
    assert usable.shape == case.analysis.tissue.shape
    assert set(np.unique(usable)) <= {0, 255}
    usable_mask = usable == 255
    assert not (usable_mask & ~case.analysis.tissue).any()
    assert not (usable_mask & case.analysis.pen_any).any()
    assert usable_mask.sum() > 0.5 * (case.analysis.tissue & ~case.analysis.pen_any).sum()


def test_html_escapes_the_label(tmp_path: Path, qc_case: Callable[[str], QcCase]) -> None:
    from slidestream_wsi.qc.pictures import summary_html

    report = qc_case("clean").report.model_copy(update={"slide_label": "<script>x</script>"})
    assert "<script>" not in summary_html(report)
