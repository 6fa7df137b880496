"""The slide adapter: properties of an output read from its structure alone equal those of the
written output, for every TIFF layout, and are what the slide reader says of the output (the
spacing conversion, QC and inference use)."""

from __future__ import annotations

from pathlib import Path

import pytest

import slidestream_samples as samples
from slidestream_deid.adapters.slides import WsiSlideTools
from slidestream_platform.objectstore.ranged import RangedObjectSource
from slidestream_samples import TIFF_LAYOUTS
from slidestream_wsi.deid import DeidPolicy
from slidestream_wsi.detect import SCANNER_VENDOR, SlideFormat
from slidestream_wsi.pseudonyms import PseudonymKey
from slidestream_wsi.pyramid import open_source
from tests.support.fakes import MemoryStore

POLICY = DeidPolicy(
    tenant="acme",
    key=PseudonymKey(1, b"test-secret-key-of-32-bytes-min!"),
    pseudonym="PSN-1-TESTPSEUDONYM0000",
)


@pytest.mark.parametrize("layout", TIFF_LAYOUTS)
def test_properties_from_the_structure_equal_those_of_the_written_output(
    tmp_path: Path, layout: str
) -> None:
    tools = WsiSlideTools()
    planted = samples.LAYOUT_MAKERS[layout](tmp_path)
    store = MemoryStore()
    store.objects[("quarantine", "slide")] = planted.path.read_bytes()
    remote = RangedObjectSource(
        store, "quarantine", "slide", planted.path.stat().st_size, name="original"
    )

    patched = tools.deidentify_as_patches(remote, POLICY)  # the service's path
    from_structure = tools.properties_of_structure(
        patched, remote.fetched_blocks(), tmp_path / "structure"
    )

    written = tmp_path / "written"
    with patched.output.open() as output:
        written.write_bytes(output.read())  # the whole output, as the store composes it
    expected = tools.properties(written)
    assert from_structure == expected
    assert not (tmp_path / "structure").exists()
    with open_source([written]) as reader:
        mpp = reader.mpp
    assert (expected.mpp_x, expected.mpp_y) == (mpp if mpp else (None, None))
    if layout != "generic_tiff":  # the generic sample states no resolution
        assert expected.mpp_x is not None
    assert expected.vendor == SCANNER_VENDOR.get(SlideFormat(reader.format))
    if layout != "ome_tiff":  # the OME sample states no scanner model
        assert expected.scanner_model is not None
    if layout in ("svs", "leica_scn", "ventana_bif"):
        assert expected.objective_power is not None  # these layouts do carry a power
