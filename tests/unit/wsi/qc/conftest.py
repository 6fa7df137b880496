"""Generated slides with planted QC truth, written once per session as pyramidal TIFFs."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from slidestream_samples import painting
from slidestream_samples.artefacts import PLANTS
from slidestream_wsi.qc import open_tiff_pyramid, run_qc
from slidestream_wsi.qc.analysis import analyse
from slidestream_wsi.qc.levels import choose_levels, level_mpp
from tests.support.qc import QcCase


@pytest.fixture(scope="session")
def qc_case(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], QcCase]:
    directory = tmp_path_factory.mktemp("qc")
    cache: dict[str, QcCase] = {}

    def make(name: str) -> QcCase:
        if name not in cache:
            slide = painting.paint_tissue(seed=7, empty=name == "empty")
            PLANTS.get(name, PLANTS["clean"])(slide)
            path = directory / f"{name}.tif"
            painting.write_tiff_pyramid(path, slide.rgb, slide.mpp_um)
            with open_tiff_pyramid(path) as source:
                report, pictures = run_qc(source, slide_label=name)
                choice = choose_levels(source.levels)
                rgb = source.read_level(choice.analysis.index)
            cache[name] = QcCase(
                slide, path, report, pictures, analyse(rgb, level_mpp(choice.analysis))
            )
        return cache[name]

    return make
