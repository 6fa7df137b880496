"""The scanner model every format states, read by ``describe_slide``, before and after
de-identification (which keeps the model and drops the unit's serial and ID), and bounded."""

from __future__ import annotations

from pathlib import Path

import pytest
import tifffile

import slidestream_samples as samples
from slidestream_wsi.deid import DeidResult
from slidestream_wsi.pyramid import describe_slide
from slidestream_wsi.pyramid.scanner import SCANNER_MODEL_MAX_CHARS, bounded_model

EXPECTED_MODEL = samples.SCANNER_MODEL_OF_LAYOUT


def test_every_layout_has_an_expectation() -> None:
    assert set(EXPECTED_MODEL) == set(samples.LAYOUT_MAKERS)


@pytest.mark.parametrize("name", sorted(EXPECTED_MODEL))
def test_the_scanner_model_is_read_where_the_format_states_it(
    name: str, planted: dict[str, samples.PlantedSlide]
) -> None:
    described = describe_slide(planted[name].files[0])
    assert described.scanner_model == EXPECTED_MODEL[name]


@pytest.mark.parametrize("name", sorted(EXPECTED_MODEL))
def test_de_identification_keeps_the_model_and_the_serial_never_stands_in(
    name: str, deidentified: dict[str, DeidResult]
) -> None:
    result = deidentified[name]
    described = describe_slide(result.outputs[0])
    assert described.scanner_model == EXPECTED_MODEL[name]
    assert samples.TOKENS["serial"] not in (described.scanner_model or "")


def _generic_with_model(directory: Path, model: bytes | str) -> Path:
    path = directory / "model.tiff"
    with tifffile.TiffWriter(path) as tif:
        tif.write(
            samples.tissue(256, 256),
            tile=(256, 256),
            photometric="rgb",
            extratags=[(272, 2, 0, model, True)],
            metadata=None,
        )
    return path


def test_a_model_is_bounded_and_printable(tmp_path: Path) -> None:
    long_model = "Scanner " + "X" * 500
    described = describe_slide(_generic_with_model(tmp_path, long_model))
    assert described.scanner_model == long_model[:SCANNER_MODEL_MAX_CHARS]
    assert bounded_model("  Aperio\tGT\x07 450\r\n") == "Aperio GT 450"
    assert bounded_model("\x00\x01 \n") is None
    assert bounded_model(b"C13220\x00") == "C13220"
    assert bounded_model(None) is None
    assert bounded_model(42) is None


def test_a_tiff_without_a_model_says_none(tmp_path: Path) -> None:
    path = tmp_path / "plain.tiff"
    tifffile.imwrite(path, samples.tissue(64, 64), photometric="rgb", metadata=None)
    assert describe_slide(path).scanner_model is None
