"""Every planted layout, de-identified: no token left, no label, same tiles, readers still work."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
import tifffile

from slidestream_wsi.deid import DeidResult
from slidestream_wsi.scan import list_metadata, scan_bytes_for_tokens

TIFF_LAYOUTS = ["svs", "generic_tiff", "ome_tiff", "ndpi", "philips_tiff"]
ALL_LAYOUTS = [*TIFF_LAYOUTS, "dicom"]
LEVELS = [(2048, 1536), (1024, 768), (512, 384)]


def _segments(path: Path) -> dict[int, tuple[bytes, ...]]:
    """Raw tile/strip bytes of every IFD (top level and SubIFDs), keyed by the IFD's offset."""
    out: dict[int, tuple[bytes, ...]] = {}
    with tifffile.TiffFile(path, is_ndpi=False) as tif, path.open("rb") as fh:
        pages = list(tif.pages)
        for page in list(pages):
            for sub_offset in page.subifds or ():
                tif.filehandle.seek(sub_offset)
                pages.append(tifffile.TiffPage(tif, index=0))
        for page in pages:
            chunks = []
            for offset, count in zip(page.dataoffsets, page.databytecounts, strict=True):
                fh.seek(offset)
                chunks.append(fh.read(count))
            out[page.offset] = tuple(chunks)
    return out


@pytest.mark.parametrize("layout", ALL_LAYOUTS)
def test_no_planted_token_survives(
    planted: dict[str, object], deidentified: dict[str, DeidResult], layout: str
) -> None:
    tokens = list(planted[layout].tokens)  # type: ignore[attr-defined]
    before = sum(len(scan_bytes_for_tokens(f, tokens)) for f in planted[layout].files)  # type: ignore[attr-defined]
    assert before > 0, "the generator must plant the tokens"
    for output in deidentified[layout].outputs:
        assert scan_bytes_for_tokens(output, tokens) == []


@pytest.mark.parametrize("layout", ALL_LAYOUTS)
def test_label_and_macro_are_gone(deidentified: dict[str, DeidResult], layout: str) -> None:
    result = deidentified[layout]
    assert set(result.audit.removed_images) & {
        "label",
        "macro",
        "overview",
        "dicom.label",
        "dicom.overview",
    }
    for output in result.outputs:
        assert set(list_metadata(output).associated_images) <= {"thumbnail"}


@pytest.mark.parametrize("layout", TIFF_LAYOUTS)
def test_tiff_tiles_are_byte_identical(
    planted: dict[str, object], deidentified: dict[str, DeidResult], layout: str
) -> None:
    source = planted[layout].path  # type: ignore[attr-defined]
    before = _segments(source)
    after = _segments(deidentified[layout].outputs[0])
    assert after, "output has pages"
    for offset, tiles in after.items():
        assert before[offset] == tiles
    with tifffile.TiffFile(deidentified[layout].outputs[0], is_ndpi=False) as tif:
        assert tif.series[0].shape[:2] == (1536, 2048)


def test_dicom_frames_are_byte_identical(
    planted: dict[str, object], deidentified: dict[str, DeidResult]
) -> None:
    sources = {int(pydicom.dcmread(f).InstanceNumber): f for f in planted["dicom"].files}  # type: ignore[attr-defined]
    outputs = deidentified["dicom"].outputs
    assert len(outputs) == 2  # the LABEL and OVERVIEW instances are dropped
    for output in outputs:
        ds = pydicom.dcmread(output)
        original = pydicom.dcmread(sources[int(ds.InstanceNumber)])
        assert ds.PixelData == original.PixelData
        assert ds.ImageType[2] == "VOLUME"


@pytest.mark.parametrize("layout", ALL_LAYOUTS)
def test_rewritten_bytes_are_a_tiny_fraction(
    deidentified: dict[str, DeidResult], layout: str
) -> None:
    result = deidentified[layout]
    assert 0 < result.bytes_rewritten <= 0.01 * result.output_bytes
    assert sorted(result.levels) == sorted(LEVELS if layout != "dicom" else LEVELS[:2])


@pytest.mark.parametrize("layout", ALL_LAYOUTS)
def test_audit_names_but_never_values(
    planted: dict[str, object], deidentified: dict[str, DeidResult], layout: str
) -> None:
    audit = deidentified[layout].audit
    text = repr(audit) + " ".join(audit.removed_fields) + " ".join(audit.removed_images)
    for token in planted[layout].tokens:  # type: ignore[attr-defined]
        assert token.lower() not in text.lower()
    assert audit.removed_values  # kept in memory for the caller's byte scan
    assert audit.scan_tokens()


@pytest.mark.parametrize("layout", TIFF_LAYOUTS)
def test_openslide_and_tiffslide_read_the_output_like_the_input(
    planted: dict[str, object], deidentified: dict[str, DeidResult], layout: str
) -> None:
    import openslide
    import tiffslide

    source = planted[layout].path  # type: ignore[attr-defined]
    output = deidentified[layout].outputs[0]
    try:
        before = openslide.OpenSlide(source)
        before.read_region((0, 0), 0, (64, 64))
    except openslide.OpenSlideError:
        before = None  # the synthetic NDPI is not one OpenSlide decodes
    if before is not None:
        after = openslide.OpenSlide(output)
        assert after.level_dimensions == before.level_dimensions
        assert after.properties.get("openslide.vendor") == before.properties.get("openslide.vendor")
        assert set(after.associated_images) <= {"thumbnail"}
        region_before = before.read_region((100, 100), 0, (300, 300)).tobytes()
        assert after.read_region((100, 100), 0, (300, 300)).tobytes() == region_before
    slide = tiffslide.TiffSlide(output)
    assert slide.level_dimensions[0] == (2048, 1536)
    assert set(slide.associated_images) <= {"thumbnail"}


def test_wsidicom_reads_the_output_series(deidentified: dict[str, DeidResult]) -> None:
    import wsidicom

    outputs = deidentified["dicom"].outputs
    with wsidicom.WsiDicom.open(outputs[0].parent) as slide:
        assert (slide.size.width, slide.size.height) == (2048, 1536)
        assert len(slide.levels) == 2
        assert not slide.labels and not slide.overviews
