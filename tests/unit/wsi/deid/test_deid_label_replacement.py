"""The replace-with-pseudonym label policy on NDPI and OME-TIFF (SVS/Philips: test_deid_tiff)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

from slidestream_wsi.deid import AssociatedImagePolicy, DeidPolicy, deidentify
from slidestream_wsi.deid.label import add_ome_label_image, pseudonym_label
from slidestream_wsi.scan import list_metadata, scan_bytes_for_tokens


@pytest.fixture(scope="module")
def replacing(policy: DeidPolicy) -> DeidPolicy:
    return DeidPolicy(
        policy.tenant,
        policy.key,
        policy.pseudonym,
        associated_images=AssociatedImagePolicy.REPLACE_WITH_PSEUDONYM,
    )


def _series(path: Path, name: str) -> np.ndarray[tuple[int, ...], np.dtype[np.uint8]]:
    with tifffile.TiffFile(path, is_ndpi=path.suffix == ".ndpi") as tif:
        series = next(s for s in tif.series if s.name == name)
        return np.asarray(series.asarray(), dtype=np.uint8)


def test_ome_label_is_replaced(
    planted: dict[str, object], replacing: DeidPolicy, tmp_path: Path
) -> None:
    slide = planted["ome_tiff"]
    result = deidentify(slide.path, tmp_path / "relabelled.ome.tiff", replacing)  # type: ignore[attr-defined]
    output = result.outputs[0]
    assert result.label_replaced
    assert scan_bytes_for_tokens(output, list(slide.tokens)) == []  # type: ignore[attr-defined]
    assert set(list_metadata(output).associated_images) == {"label"}
    # The OME label series is the generated image, pixel for pixel (Deflate is lossless).
    assert np.array_equal(_series(output, "label"), pseudonym_label(replacing.pseudonym))
    import tiffslide

    opened = tiffslide.TiffSlide(output)
    assert set(opened.associated_images) == {"label"}
    assert opened.level_dimensions[0] == (2048, 1536)


def test_ndpi_macro_slot_gets_the_pseudonym_label(
    planted: dict[str, object], replacing: DeidPolicy, tmp_path: Path
) -> None:
    slide = planted["ndpi"]
    result = deidentify(slide.path, tmp_path / "relabelled_ndpi.tiff", replacing)  # type: ignore[attr-defined]
    output = result.outputs[0]
    assert result.label_replaced
    assert scan_bytes_for_tokens(output, list(slide.tokens)) == []  # type: ignore[attr-defined]
    assert set(list_metadata(output).associated_images) == {"label"}
    import openslide

    with openslide.OpenSlide(output) as opened:
        # NDPI has no label image; readers show the generated one where the macro was.
        assert opened.properties["openslide.vendor"] == "hamamatsu"
        macro = np.asarray(opened.associated_images["macro"].convert("RGB"), dtype=np.int16)
    expected = pseudonym_label(replacing.pseudonym).astype(np.int16)
    assert macro.shape == expected.shape
    assert float(np.abs(macro - expected).mean()) < 8.0  # JPEG, quality 90


def test_ome_label_image_goes_after_the_last_image() -> None:
    ns = "http://www.openmicroscopy.org/Schemas/OME/2016-06"
    xml = (
        f'<OME xmlns="{ns}"><Image ID="Image:0"><Pixels ID="Pixels:0"/></Image>'
        "<StructuredAnnotations/></OME>"
    )
    out = add_ome_label_image(xml, 3)
    assert out.index('Name="label"') < out.index("StructuredAnnotations")
    assert '<TiffData IFD="3" PlaneCount="1" />' in out
    assert "ns0:" not in out
