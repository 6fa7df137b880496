from __future__ import annotations

import pytest

from slidestream_upload.domain.filenames import MAX_FILENAME_BYTES, sanitize_filename


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("slide-01.svs", "slide-01.svs"),
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\system32\\cmd.exe", "cmd.exe"),
        ("/absolute/path/slide.svs", "slide.svs"),
        ("sl\x00ide.svs", "slide.svs"),
        ("evil\u202egpj.exe", "evilgpj.exe"),
        ("isolate\u2066d\u2069.tiff", "isolated.tiff"),
        ("line\nbreak.svs", "linebreak.svs"),
        ("..", "unnamed"),
        ("", "unnamed"),
        ("e\u0301.svs", "\u00e9.svs"),
    ],
)
def test_sanitize_filename(raw: str, expected: str) -> None:
    assert sanitize_filename(raw) == expected


def test_long_names_are_cut_on_a_character_boundary() -> None:
    name = sanitize_filename("é" * 300)
    assert len(name.encode()) <= MAX_FILENAME_BYTES
    assert set(name) == {"é"}
