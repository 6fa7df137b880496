"""The module builders of a WSI instance: each writes its own attributes, so the order they run
in cannot change the dataset, and together they write the whole dataset."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from slidestream_wsi.convert import DicomIdentity
from slidestream_wsi.convert.dicom_modules import SlideDescription
from slidestream_wsi.convert.dicom_out import IOD_MODULES, build_dataset
from tests.support.dicom import jpeg_volume, slide_description


def _description(mpp: tuple[float, float] | None) -> SlideDescription:
    return slide_description(DicomIdentity("modules-test", case_pseudonym="PSN-1"), mpp=mpp)


GEOMETRY = jpeg_volume("level-1", (512, 384), level=1)


@pytest.mark.parametrize("mpp", [(0.25, 0.25), None])
def test_modules_write_disjoint_attributes_that_make_the_dataset(
    mpp: tuple[float, float] | None,
) -> None:
    slide = _description(mpp)
    written: dict[int, str] = {}
    for build in IOD_MODULES:
        part = Dataset()
        build(part, slide, GEOMETRY)
        assert len(part) > 0, build.__name__
        for element in part:
            tag = int(element.tag)
            assert tag not in written, f"{tag} written by {written.get(tag)} and {build.__name__}"
            written[tag] = build.__name__
    assert set(written) == {int(element.tag) for element in build_dataset(slide, GEOMETRY)}


def test_spacing_is_written_only_when_known() -> None:
    with_spacing = build_dataset(_description((0.25, 0.5)), GEOMETRY)
    shared = with_spacing.SharedFunctionalGroupsSequence[0]
    # PS3.3 §10.7.1.3: (row, column) spacing in mm, at this level's downsample.
    assert [float(v) for v in shared.PixelMeasuresSequence[0].PixelSpacing] == [0.001, 0.0005]
    without = build_dataset(_description(None), GEOMETRY)
    assert "PixelMeasuresSequence" not in without.SharedFunctionalGroupsSequence[0]
    assert "ImagedVolumeWidth" not in without
