"""``measure`` returns typed measures whose names are the report's: every measure the report
knows is taken on a clean slide (blur comes from the focus level), and groups that cannot be
measured are absent with a note instead of missing keys."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from slidestream_wsi.qc import MEASURES
from slidestream_wsi.qc.measure import measure
from slidestream_wsi.qc.segment import segment


def test_a_clean_slide_takes_every_measure_the_report_names(
    qc_case: Callable[[str], Any],
) -> None:
    case = qc_case("clean")
    measures = case.analysis.measures
    assert set(measures.values()) == set(MEASURES) - {"blur_fraction"}
    with_blur = replace(measures, blur_fraction=0.25)
    assert set(with_blur.values()) == set(MEASURES)
    for name, value in measures.values().items():
        assert case.report.measure(name).value == value


def test_glass_alone_has_no_tissue_measures() -> None:
    glass = np.full((800, 1000, 3), 235, np.uint8)
    segmentation = segment(glass, 8.0)
    measurement = measure(segmentation, glass)
    assert measurement.measures.tissue is None
    assert measurement.measures.glass is not None
    assert measurement.stain_vectors is None
    assert not measurement.fold.any()
    assert measurement.notes == ("no tissue: colour, fold, stain and focus measures not taken",)
    assert "fold_fraction" not in measurement.measures.values()
