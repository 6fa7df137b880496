"""The in-place fast path: same output as the copying path, described as patches of the input."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from slidestream_wsi.deid import (
    AssociatedImagePolicy,
    DeidPolicy,
    deidentify,
    deidentify_in_place,
    supports_in_place,
)
from slidestream_wsi.detect import Container, detect_format
from slidestream_wsi.errors import SlideError, UnsupportedFormatError
from slidestream_wsi.scan import scan_bytes_for_tokens

TIFF_LAYOUTS = (
    "svs",
    "generic_tiff",
    "ome_tiff",
    "ndpi",
    "philips_tiff",
    "leica_scn",
    "ventana_bif",
)


def _relabelling(policy: DeidPolicy) -> DeidPolicy:
    return DeidPolicy(
        policy.tenant,
        policy.key,
        policy.pseudonym,
        associated_images=AssociatedImagePolicy.REPLACE_WITH_PSEUDONYM,
    )


@pytest.mark.parametrize("relabel", [False, True])
@pytest.mark.parametrize("layout", TIFF_LAYOUTS)
def test_in_place_output_equals_the_copying_path_and_its_patches(
    planted: dict[str, object], policy: DeidPolicy, tmp_path: Path, layout: str, relabel: bool
) -> None:
    chosen = _relabelling(policy) if relabel else policy
    source: Path = planted[layout].path  # type: ignore[attr-defined]
    original = source.read_bytes()
    copied = deidentify(source, tmp_path / "copied", chosen)
    in_place = tmp_path / "in-place"
    shutil.copyfile(source, in_place)

    patched = deidentify_in_place(in_place, chosen)

    output = in_place.read_bytes()
    assert output == copied.outputs[0].read_bytes()
    assert patched.result.outputs == (in_place,)
    assert patched.result.output_bytes == len(output)
    assert patched.result.bytes_rewritten == copied.bytes_rewritten
    assert patched.result.audit == copied.audit
    assert patched.source_size_bytes == len(original)
    # Rebuilding the output from the input and the patches gives it back, byte for byte.
    rebuilt = bytearray(original)
    previous_end = -1
    for offset, data in patched.patches:
        assert offset > previous_end  # sorted, disjoint and not touching
        previous_end = offset + len(data)
        rebuilt[offset : offset + len(data)] = data
    assert bytes(rebuilt) == output
    # The byte post-condition was handed over: the caller's scan must find nothing.
    assert scan_bytes_for_tokens(in_place, list(patched.byte_scan_tokens)) == []
    assert patched.byte_scan_tokens  # the planted slides have removed values to look for


def test_dicom_is_refused_without_touching_the_file(
    planted: dict[str, object], policy: DeidPolicy, tmp_path: Path
) -> None:
    series = planted["dicom"]
    member = next(p for p in series.path.iterdir() if p.suffix == ".dcm")  # type: ignore[attr-defined]
    if detect_format(member).container is not Container.DICOM:
        pytest.fail("the planted DICOM series should hold DICOM instances")
    target = tmp_path / "instance.dcm"
    shutil.copyfile(member, target)
    before = target.read_bytes()
    with pytest.raises(UnsupportedFormatError):
        deidentify_in_place(target, policy)
    assert target.read_bytes() == before


def test_a_broken_input_is_left_as_it_was(tmp_path: Path, policy: DeidPolicy) -> None:
    target = tmp_path / "broken.tif"
    target.write_bytes(b"II*\x00" + (10_000).to_bytes(4, "little") + bytes(64))
    with pytest.raises(SlideError):
        deidentify_in_place(target, policy)
    assert target.read_bytes() == b"II*\x00" + (10_000).to_bytes(4, "little") + bytes(64)


def test_supports_in_place_names_the_tiff_formats_only(planted: dict[str, object]) -> None:
    for layout in TIFF_LAYOUTS:
        assert supports_in_place(detect_format(planted[layout].path))  # type: ignore[attr-defined]
    member = next(planted["dicom"].path.glob("*.dcm"))  # type: ignore[attr-defined]
    assert not supports_in_place(detect_format(member))
