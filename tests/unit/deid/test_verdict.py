"""The residual-PHI gate's decisions, and the reason codes of refused slides."""

from __future__ import annotations

import pytest

from slidestream_deid.domain.verdict import (
    MAX_DETAIL_CHARS,
    ByteHit,
    Finding,
    byte_findings,
    decide,
    image_findings,
    is_residual_failure,
    metadata_findings,
)
from slidestream_wsi.errors import (
    CorruptSlideError,
    DeidentificationError,
    SlideBombError,
    SlideError,
    TruncatedSlideError,
    UnsafeArchiveError,
    UnsupportedFormatError,
)


def test_clean_output_passes() -> None:
    verdict = decide([])
    assert verdict.clean and verdict.detail() == ""


def test_metadata_tokens_match_whole_words_case_insensitively() -> None:
    strings = [
        ("ifd0.ImageDescription", "Aperio Image Library|AppMag = 20|Note = case c-12 done"),
        ("ifd0.Software", "ScannerXC-123"),
    ]
    found = metadata_findings(strings, ["C-12"], "slide.svs")
    assert found == [Finding("metadata", "slide.svs:ifd0.ImageDescription")]
    # Glued into a longer run it is another value, not the identifier.
    assert metadata_findings([("x", "XC-123")], ["C-12"], "a") == []


def test_labels_and_macros_fail_the_gate_thumbnails_do_not() -> None:
    roles = ["thumbnail", "label", "macro"]
    assert [str(f) for f in image_findings(roles, label_replaced=False, artefact="s")] == [
        "image:s:label",
        "image:s:macro",
    ]
    # A generated label that shows only the pseudonym may stay.
    assert [str(f) for f in image_findings(roles, label_replaced=True, artefact="s")] == [
        "image:s:macro"
    ]


def test_detail_names_places_never_values_and_fits_the_event() -> None:
    hits = [ByteHit("slide.svs", 0, offset, "utf-8") for offset in range(0, 5000, 7)]
    verdict = decide(byte_findings(hits))
    detail = verdict.detail()
    assert not verdict.clean
    assert detail.startswith(f"{len(hits)} residual finding(s) in bytes: bytes:slide.svs@0")
    assert len(detail) <= MAX_DETAIL_CHARS
    assert detail.endswith("...")


def test_library_residual_refusals_are_told_apart_from_broken_outputs() -> None:
    assert is_residual_failure(
        DeidentificationError("a removed value is still present in the output bytes")
    )
    assert is_residual_failure(
        DeidentificationError("an associated image survived de-identification")
    )
    assert not is_residual_failure(
        DeidentificationError("the de-identified output does not validate")
    )


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (UnsupportedFormatError("x"), "unsupported-format"),
        (UnsafeArchiveError("x"), "unsafe-archive"),
        (SlideBombError("x"), "slide-bomb"),
        (TruncatedSlideError("x"), "truncated-slide"),
        (CorruptSlideError("x"), "corrupt-slide"),
        (DeidentificationError("x"), "deid-failed"),
        (SlideError("x"), "invalid-slide"),
    ],
)
def test_poison_reasons(error: SlideError, reason: str) -> None:
    assert error.reason == reason  # what deid puts in the dead letter
