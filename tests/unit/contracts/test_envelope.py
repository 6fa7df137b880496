from __future__ import annotations

from uuid import uuid4

import pytest

from slidestream_contracts.envelope import Envelope, EnvelopeError, envelope_for, event_key
from slidestream_contracts.events import ObjectRef, SlideFormat, SlideUploadedV1


def test_envelope_is_cloudevents_binary_mode() -> None:
    event = SlideUploadedV1(
        slide_id=uuid4(),
        tenant="acme",
        original=ObjectRef(bucket="quarantine", key="k", sha256="b" * 64, size_bytes=1),
        container_format=SlideFormat.DICOM,
        upload_id="u",
    )
    headers = envelope_for(event, service="upload").to_headers()
    assert headers["ce_specversion"] == "1.0"
    assert headers["ce_type"] == "io.slidestream.slide.uploaded.v1"
    assert headers["ce_source"] == "/slidestream/upload"
    assert headers["ce_subject"] == str(event.slide_id)
    assert headers["content-type"] == "application/json"
    assert Envelope.from_headers(headers).subject == str(event.slide_id)
    assert event_key(event) == str(event.slide_id).encode()


def test_missing_required_attributes_are_an_error() -> None:
    with pytest.raises(EnvelopeError, match="ce_id"):
        Envelope.from_headers({"ce_specversion": "1.0", "ce_type": "t", "ce_source": "/s"})
    with pytest.raises(EnvelopeError, match="specversion"):
        Envelope.from_headers(
            {"ce_specversion": "0.3", "ce_id": "1", "ce_type": "t", "ce_source": "/s"}
        )
