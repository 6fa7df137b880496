"""Leica SCN and Ventana BIF: planted PHI gone, macro/label gone, tiles identical, readers open.

Both layouts put an associated image in directory 0 (the Leica macro, the Ventana label), where
their readers also look for the slide's metadata; the output moves the scrubbed metadata to the
new first directory.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import tifffile

import slidestream_samples as samples
from slidestream_wsi.deid import AssociatedImagePolicy, DeidPolicy, DeidResult, deidentify
from slidestream_wsi.deid.audit import AuditRecorder
from slidestream_wsi.deid.leica import scrub_scn_xml
from slidestream_wsi.deid.ventana import scrub_bif_description, scrub_bif_xmp
from slidestream_wsi.errors import CorruptSlideError, SlideError, TruncatedSlideError
from slidestream_wsi.scan import list_metadata, scan_bytes_for_tokens

LAYOUTS = ["leica_scn", "ventana_bif"]
LEVELS = [(2048, 1536), (1024, 768), (512, 384)]
OPENSLIDE_VENDOR = {"leica_scn": "leica", "ventana_bif": "ventana"}


@pytest.fixture(scope="module")
def slides(tmp_path_factory: pytest.TempPathFactory) -> dict[str, samples.PlantedSlide]:
    directory = tmp_path_factory.mktemp("scn_bif")
    return {
        "leica_scn": samples.make_leica_scn(directory),
        "ventana_bif": samples.make_ventana_bif(directory),
    }


@pytest.fixture(scope="module")
def outputs(
    slides: dict[str, samples.PlantedSlide],
    policy: DeidPolicy,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, DeidResult]:
    directory = tmp_path_factory.mktemp("scn_bif_out")
    return {
        name: deidentify(slide.path, directory / f"out_{slide.path.name}", policy)
        for name, slide in slides.items()
    }


def _level_tiles(path: Path) -> dict[tuple[int, int], tuple[bytes, ...]]:
    """Raw tile bytes of every tiled directory, keyed by its (width, height)."""
    out: dict[tuple[int, int], tuple[bytes, ...]] = {}
    with tifffile.TiffFile(path) as tif, path.open("rb") as fh:
        for page in tif.pages:
            if not page.is_tiled:
                continue
            chunks = []
            for offset, count in zip(page.dataoffsets, page.databytecounts, strict=True):
                fh.seek(offset)
                chunks.append(fh.read(count))
            out[(page.imagewidth, page.imagelength)] = tuple(chunks)
    return out


@pytest.mark.parametrize("layout", LAYOUTS)
def test_no_planted_token_survives(
    slides: dict[str, samples.PlantedSlide], outputs: dict[str, DeidResult], layout: str
) -> None:
    tokens = list(slides[layout].tokens)
    assert scan_bytes_for_tokens(slides[layout].path, tokens), "the generator plants tokens"
    assert scan_bytes_for_tokens(outputs[layout].outputs[0], tokens) == []


def test_scn_barcode_is_planted_base64_and_removed(
    slides: dict[str, samples.PlantedSlide], outputs: dict[str, DeidResult]
) -> None:
    encoded = base64.b64encode(samples.TOKENS["barcode"].encode()).decode()
    assert scan_bytes_for_tokens(slides["leica_scn"].path, [encoded])
    assert scan_bytes_for_tokens(outputs["leica_scn"].outputs[0], [encoded]) == []
    assert samples.TOKENS["barcode"] in outputs["leica_scn"].audit.removed_values


@pytest.mark.parametrize("layout", LAYOUTS)
def test_macro_and_label_are_gone_and_levels_kept(
    outputs: dict[str, DeidResult], layout: str
) -> None:
    result = outputs[layout]
    assert set(result.audit.removed_images) & {"macro", "label"}
    assert set(list_metadata(result.outputs[0]).associated_images) <= {"thumbnail"}
    assert sorted(result.levels) == sorted(LEVELS)
    assert 0 < result.rewritten_fraction <= 0.01


@pytest.mark.parametrize("layout", LAYOUTS)
def test_tiles_are_byte_identical(
    slides: dict[str, samples.PlantedSlide], outputs: dict[str, DeidResult], layout: str
) -> None:
    before = _level_tiles(slides[layout].path)
    after = _level_tiles(outputs[layout].outputs[0])
    assert sorted(after) == sorted(LEVELS)  # the tiled Leica macro is gone
    for size, tiles in after.items():
        assert tiles == before[size]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_openslide_reads_the_output_like_the_input(
    slides: dict[str, samples.PlantedSlide], outputs: dict[str, DeidResult], layout: str
) -> None:
    import openslide

    with (
        openslide.OpenSlide(slides[layout].path) as before,
        openslide.OpenSlide(outputs[layout].outputs[0]) as after,
    ):
        assert after.properties["openslide.vendor"] == OPENSLIDE_VENDOR[layout]
        assert after.level_dimensions == before.level_dimensions
        assert set(before.associated_images) - {"thumbnail"}, "input has a macro/label"
        assert set(after.associated_images) <= {"thumbnail"}
        for key in ("openslide.objective-power", "openslide.mpp-x"):
            assert after.properties.get(key) == before.properties.get(key)
        text = " ".join(after.properties.values()).lower()
        for token in slides[layout].tokens:
            assert token.lower() not in text
        for level in range(after.level_count):
            size = (256, 256)
            origin = (0, 0) if layout == "ventana_bif" else (160_000 // 500, 160_000 // 500)
            region = after.read_region(origin, level, size).tobytes()
            assert region == before.read_region(origin, level, size).tobytes()


def test_tiffslide_reads_the_bif_output(outputs: dict[str, DeidResult]) -> None:
    import tiffslide

    slide = tiffslide.TiffSlide(outputs["ventana_bif"].outputs[0])
    assert slide.level_dimensions == tuple(LEVELS)
    assert set(slide.associated_images) == {"thumbnail"}


def test_tifffile_reads_the_scn_output(outputs: dict[str, DeidResult]) -> None:
    # tiffslide 3.0 fails on any SCN collection with a single <image> (its XML-to-dict step
    # expects a list), so the Leica output is checked with tifffile's SCN series.
    with tifffile.TiffFile(outputs["leica_scn"].outputs[0]) as tif:
        assert tif.is_scn
        assert [s.shape[-3:-1] for s in tif.series[0].levels] == [(h, w) for w, h in LEVELS]


def test_bif_label_is_replaced_by_the_pseudonym(
    slides: dict[str, samples.PlantedSlide], policy: DeidPolicy, tmp_path: Path
) -> None:
    replacing = DeidPolicy(
        policy.tenant,
        policy.key,
        policy.pseudonym,
        associated_images=AssociatedImagePolicy.REPLACE_WITH_PSEUDONYM,
    )
    result = deidentify(slides["ventana_bif"].path, tmp_path / "relabelled.bif", replacing)
    assert result.label_replaced
    output = result.outputs[0]
    assert scan_bytes_for_tokens(output, list(slides["ventana_bif"].tokens)) == []
    assert set(list_metadata(output).associated_images) == {"label", "thumbnail"}
    import openslide

    with openslide.OpenSlide(output) as opened:
        # OpenSlide's ventana driver names the "Label Image" directory "macro".
        assert opened.properties["openslide.vendor"] == "ventana"
        assert opened.associated_images["macro"].size == (320, 96)


def test_scn_macro_cannot_be_replaced_and_says_so(
    slides: dict[str, samples.PlantedSlide], policy: DeidPolicy, tmp_path: Path
) -> None:
    replacing = DeidPolicy(
        policy.tenant,
        policy.key,
        policy.pseudonym,
        associated_images=AssociatedImagePolicy.REPLACE_WITH_PSEUDONYM,
    )
    result = deidentify(slides["leica_scn"].path, tmp_path / "scn.scn", replacing)
    assert not result.label_replaced  # Leica slides have a macro, no label image
    assert set(list_metadata(result.outputs[0]).associated_images) == set()


def test_deidentification_is_deterministic(
    slides: dict[str, samples.PlantedSlide], policy: DeidPolicy, tmp_path: Path
) -> None:
    for slide in slides.values():
        first = deidentify(slide.path, tmp_path / f"a_{slide.path.name}", policy)
        second = deidentify(slide.path, tmp_path / f"b_{slide.path.name}", policy)
        assert first.outputs[0].read_bytes() == second.outputs[0].read_bytes()


def test_scn_xml_renumbers_and_keeps_only_geometry() -> None:
    ns = samples.LEICA_SCN_NAMESPACE
    text = (
        f'<scn xmlns="{ns}"><collection name="case 12" sizeX="100" sizeY="50">'
        "<barcode>QkMtMTIzNDU2</barcode>"
        '<image name="macro"><view sizeX="100" sizeY="50" offsetX="0" offsetY="0"/>'
        '<pixels sizeX="10" sizeY="5"><dimension sizeX="10" sizeY="5" ifd="0"/></pixels>'
        "</image>"
        '<image name="main"><creationDate>2020-01-01</creationDate>'
        '<device model="Leica SCN400" version="1.4.0.9915 2010/10/11 14:40:39"/>'
        '<view sizeX="40" sizeY="20" offsetX="10" offsetY="5"/>'
        '<pixels sizeX="80" sizeY="40"><dimension sizeX="80" sizeY="40" r="0" ifd="2"/>'
        "</pixels><scanSettings><objectiveSettings><objective>20</objective>"
        "</objectiveSettings><user>jdoe-1234</user></scanSettings></image>"
        "</collection></scn>"
    )
    audit = AuditRecorder()
    scrubbed = scrub_scn_xml(text, {2: 0}, audit)
    assert scrubbed == (
        f'<scn xmlns="{ns}"><collection sizeX="100" sizeY="50">'
        '<image><device model="Leica SCN400" version="1.4.0.9915" />'
        '<view sizeX="40" sizeY="20" offsetX="10" offsetY="5" />'
        '<pixels sizeX="80" sizeY="40"><dimension sizeX="80" sizeY="40" r="0" ifd="0" />'
        "</pixels><scanSettings><objectiveSettings><objective>20</objective>"
        "</objectiveSettings></scanSettings></image></collection></scn>"
    )
    removed = audit.finish().removed_values
    assert {"case 12", "BC-123456", "2020-01-01", "jdoe-1234"} <= removed


def test_bif_metadata_scrubbers() -> None:
    audit = AuditRecorder()
    assert scrub_bif_xmp('<x:xmpmeta xmlns:x="adobe:ns:meta/">who</x:xmpmeta>', audit) is None
    assert scrub_bif_xmp('<iScan UserName="jdoe" ScanRes="0.25" Z-layers="1"/>', audit) == (
        '<iScan ScanRes="0.25" Z-layers="1" />'
    )
    assert scrub_bif_description("level=2 mag=10 quality=90 user=jdoe", audit) == (
        "level=2 mag=10 quality=90"
    )
    assert scrub_bif_description("Label_Image", audit) == "Label_Image"
    assert scrub_bif_description("scanned by jdoe", audit) is None
    assert "jdoe" in audit.finish().removed_values


def test_truncated_scn_is_refused(
    slides: dict[str, samples.PlantedSlide], policy: DeidPolicy, tmp_path: Path
) -> None:
    data = slides["leica_scn"].path.read_bytes()
    truncated = tmp_path / "truncated.scn"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises((TruncatedSlideError, CorruptSlideError)):
        deidentify(truncated, tmp_path / "out.scn", policy)
    assert not (tmp_path / "out.scn").exists()


def test_scn_whose_xml_names_no_level_is_refused(policy: DeidPolicy, tmp_path: Path) -> None:
    path = tmp_path / "broken.scn"
    image = samples.tissue(256, 256)
    description = (
        f'<scn xmlns="{samples.LEICA_SCN_NAMESPACE}"><collection sizeX="1" sizeY="1">'
        "<image><view sizeX='1' sizeY='1' offsetX='0' offsetY='0'/>"
        "<pixels><dimension sizeX='256' sizeY='256' ifd='0'/></pixels></image>"
        "</collection></scn>"
    )
    with tifffile.TiffWriter(path, bigtiff=True) as tif:
        tif.write(image, tile=(256, 256), description=description, metadata=None)
    with pytest.raises(SlideError):
        deidentify(path, tmp_path / "out.scn", policy)
    assert not (tmp_path / "out.scn").exists()
