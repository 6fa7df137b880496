"""A DICOM VL Whole Slide Microscopy image of one frame and no pixel spacing: what a partner gets
from a scanner's "export field of view" or a converter that drops Pixel Measures. The platform
must not invent its resolution; the partner can state it (issue 18)."""

from __future__ import annotations

from pathlib import Path

import imagecodecs
import pydicom
from pydicom.encaps import encapsulate

import slidestream_samples as samples

JPEG_QUALITY = 90


def write_single_frame_dicom(work: Path, target: Path) -> Path:
    """The sample series' second level as one frame (1024 x 768), its Pixel Measures removed
    (PS3.3 C.8.12.4.1.4: the Pixel Spacing of a WSI instance lives there and nowhere else)."""
    series = samples.make_dicom_series(work)
    volumes = [
        f for f in series.files if "VOLUME" in pydicom.dcmread(f, stop_before_pixels=True).ImageType
    ]
    source = sorted(volumes, key=lambda f: f.stat().st_size)[0]
    ds = pydicom.dcmread(source)
    width, height = int(ds.TotalPixelMatrixColumns), int(ds.TotalPixelMatrixRows)
    pixels = samples.pixels.tissue(width, height, seed=11)
    frame = imagecodecs.jpeg8_encode(pixels, level=JPEG_QUALITY, colorspace="RGB")
    ds.Columns, ds.Rows, ds.NumberOfFrames = width, height, 1
    ds.PhotometricInterpretation = "YBR_FULL_422"
    ds.PixelData = encapsulate([bytes(frame)])
    for name in ("ImagedVolumeWidth", "ImagedVolumeHeight"):
        if name in ds:
            delattr(ds, name)
    shared = ds.SharedFunctionalGroupsSequence[0]
    if "PixelMeasuresSequence" in shared:
        del shared.PixelMeasuresSequence
    target.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(target, enforce_file_format=True)
    return target
