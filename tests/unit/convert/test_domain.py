"""Pure rules of the convert service."""

from __future__ import annotations

from uuid import uuid4

import pytest

from slidestream_convert.domain.artefacts import content_type, source_file_name
from slidestream_convert.domain.inputs import EVENT_ID_NAMESPACE
from slidestream_convert.domain.outputs import OutputPolicyError, outputs_for
from slidestream_platform.decisions import DecisionPublisher


def test_event_ids_are_deterministic_per_slide_input_and_topic() -> None:
    event_id = DecisionPublisher(None, None, EVENT_ID_NAMESPACE).event_id  # type: ignore[arg-type]
    slide = uuid4()
    assert event_id(slide, "d", "t") == event_id(slide, "d", "t")
    assert event_id(slide, "d", "t") != event_id(slide, "d", "u")
    assert event_id(slide, "d", "t") != event_id(uuid4(), "d", "t")


def test_outputs_default_to_both_and_follow_the_tenant() -> None:
    assert outputs_for("x", ("dicom", "tiff"), {}) == {"dicom", "tiff"}
    assert outputs_for("x", ("dicom", "tiff"), {"x": ("tiff",)}) == {"tiff"}
    with pytest.raises(OutputPolicyError):
        outputs_for("x", ("dicom",), {"x": ()})
    with pytest.raises(OutputPolicyError):
        outputs_for("x", ("jpeg",), {})


def test_names_and_content_types() -> None:
    assert content_type("dicom/level-0.dcm") == "application/dicom"
    assert content_type("tiff/slide.ome.tiff") == "image/tiff"
    assert content_type("provenance.json") == "application/json"
    assert source_file_name("t/s/dicom/1.2.3.dcm", 2) == "0002-1.2.3.dcm"
