"""Each measure recovers what was planted in a generated slide, within a stated tolerance."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.support.qc import BLUR_TOLERANCE, QcCase, iou

PEN_IOU_MIN = 0.8
BUBBLE_IOU_MIN = 0.7
FOLD_IOU_MIN = 0.5
FOLD_TOLERANCE = 0.05
TISSUE_IOU_MIN = 0.85


def test_clean_slide_passes(qc_case: Callable[[str], QcCase]) -> None:
    case = qc_case("clean")
    assert case.report.verdict == "pass", case.report.reasons
    assert case.value("blur_fraction") < 0.05
    assert case.value("pen_fraction") == 0.0
    assert case.value("bubble_fraction") == 0.0
    assert case.value("coverslip_edge_count") == 0.0
    assert case.value("hematoxylin_angle_deg") < 20 and case.value("eosin_angle_deg") < 20
    assert case.report.stain is not None and case.report.stain.he_stain_ok


def test_tissue_mask_and_area(qc_case: Callable[[str], QcCase]) -> None:
    case = qc_case("clean")
    truth = case.truth_at_analysis("tissue")
    assert iou(case.analysis.tissue, truth) >= TISSUE_IOU_MIN
    truth_mm2 = float(case.slide.tissue.sum()) * case.slide.mpp_um**2 / 1e6
    assert case.value("tissue_area_mm2") == pytest.approx(truth_mm2, rel=0.15)
    assert case.value("tissue_fraction") == pytest.approx(case.slide.tissue.mean(), abs=0.05)
    assert case.value("tissue_fragments") >= 1


@pytest.mark.parametrize("name", ["blur30", "blur60"])
def test_blurred_fraction_recovered(qc_case: Callable[[str], QcCase], name: str) -> None:
    case = qc_case(name)
    truth = float((case.slide.truth["blur"] & case.slide.tissue).sum() / case.slide.tissue.sum())
    assert case.value("blur_fraction") == pytest.approx(truth, abs=BLUR_TOLERANCE)
    # 30 % sits on the default fail limit (0.30): at least a warning; 60 % fails.
    expected = {"blur30": {"warn", "fail"}, "blur60": {"fail"}}[name]
    assert case.report.measure("blur_fraction").verdict in expected


@pytest.mark.parametrize("colour", ["blue", "green", "black", "red"])
def test_pen_of_each_colour(qc_case: Callable[[str], QcCase], colour: str) -> None:
    case = qc_case(f"pen_{colour}")
    truth = case.truth_at_analysis(f"pen_{colour}")
    assert iou(case.analysis.pen[colour], truth) >= PEN_IOU_MIN
    others = [c for c in ("blue", "green", "black", "red") if c != colour]
    for other in others:
        assert case.value(f"pen_{other}_fraction") < 0.1 * case.value(f"pen_{colour}_fraction")
    assert case.report.measure("pen_fraction").verdict == "warn"
    assert case.report.verdict in ("warn", "fail")


def test_empty_slide_fails(qc_case: Callable[[str], QcCase]) -> None:
    case = qc_case("empty")
    assert case.report.verdict == "fail"
    assert case.value("tissue_fraction") < 0.001
    assert any(reason.startswith("tissue_fraction") for reason in case.report.reasons)
    assert "blur_fraction" not in {m.name for m in case.report.measures}
    assert any("no tissue" in note for note in case.report.notes)


def test_fold_found(qc_case: Callable[[str], QcCase]) -> None:
    case = qc_case("fold")
    truth = case.truth_at_analysis("fold")
    truth_fraction = float(case.slide.truth["fold"].sum() / case.slide.tissue.sum())
    assert iou(case.analysis.fold, truth) >= FOLD_IOU_MIN
    assert case.value("fold_fraction") == pytest.approx(truth_fraction, abs=FOLD_TOLERANCE)
    assert case.report.measure("fold_fraction").verdict != "pass"
    assert qc_case("clean").value("fold_fraction") < 0.01


def test_bubble_found(qc_case: Callable[[str], QcCase]) -> None:
    case = qc_case("bubble")
    assert iou(case.analysis.bubble, case.truth_at_analysis("bubble")) >= BUBBLE_IOU_MIN
    assert case.report.measure("bubble_fraction").verdict != "pass"


def test_coverslip_edge_found(qc_case: Callable[[str], QcCase]) -> None:
    case = qc_case("edge")
    assert case.value("coverslip_edge_count") == 1
    assert case.report.measure("coverslip_edge_count").verdict == "warn"


def test_dark_spots_found(qc_case: Callable[[str], QcCase]) -> None:
    case = qc_case("dark_spots")
    truth = case.truth_at_analysis("dark_spot")
    assert iou(case.analysis.dark_spot, truth) >= 0.6
    assert case.report.measure("dark_spot_fraction").verdict != "pass"


def test_over_exposure(qc_case: Callable[[str], QcCase]) -> None:
    case = qc_case("over")
    assert case.report.measure("tissue_clipped_fraction").verdict != "pass"
    assert case.value("tissue_brightness") > qc_case("clean").value("tissue_brightness")
    # The tissue is still found on a washed-out slide.
    assert iou(case.analysis.tissue, case.truth_at_analysis("tissue")) >= TISSUE_IOU_MIN


def test_under_exposure(qc_case: Callable[[str], QcCase]) -> None:
    case = qc_case("under")
    assert case.report.measure("background_brightness").verdict == "fail"
    assert case.report.verdict == "fail"
    assert iou(case.analysis.tissue, case.truth_at_analysis("tissue")) >= TISSUE_IOU_MIN


def test_uneven_illumination(qc_case: Callable[[str], QcCase]) -> None:
    case = qc_case("vignetting")
    assert case.report.measure("background_unevenness").verdict != "pass"
    assert qc_case("clean").value("background_unevenness") < 0.02
