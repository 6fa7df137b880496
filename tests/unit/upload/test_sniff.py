from __future__ import annotations

import pytest

from slidestream_contracts.events import SlideFormat
from slidestream_upload.domain.sniff import sniff_container


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"II*\x00" + b"\x00" * 128, SlideFormat.TIFF),
        (b"MM\x00*" + b"\x00" * 128, SlideFormat.TIFF),
        (b"II+\x00\x08\x00\x00\x00", SlideFormat.BIGTIFF),
        (b"\x00" * 128 + b"DICM" + b"\x02\x00", SlideFormat.DICOM),
        (b"PK\x03\x04" + b"\x00" * 30, SlideFormat.ZIP),
        (b"\x89PNG\r\n\x1a\n", None),
        (b"%PDF-1.7", None),
        (b"PK\x05\x06" + b"\x00" * 18, None),
        (b"", None),
    ],
)
def test_sniff_container(head: bytes, expected: SlideFormat | None) -> None:
    assert sniff_container(head) is expected
