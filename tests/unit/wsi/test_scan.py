from __future__ import annotations

import hashlib
import importlib.util
import random
from pathlib import Path

import pytest

from slidestream_wsi.scan import (
    ByteTokenScanner,
    MetadataString,
    list_metadata,
    scan_bytes_for_tokens,
    stream_patched_output,
)
from slidestream_wsi.tiff.patch import apply_patches


def test_finds_tokens_across_chunks_cases_and_encodings(tmp_path: Path) -> None:
    path = tmp_path / "blob.bin"
    data = b"\x00" * 13 + b"JOHN smith" + b"\xff" * 7 + "John".encode("utf-16-le") + b"z"
    path.write_bytes(data)
    for chunk in (3, 7, 64):
        hits = scan_bytes_for_tokens(path, ["john Smith", "john"], chunk_bytes=chunk)
        found = {(h.token_index, h.offset, h.encoding) for h in hits}
        assert (0, 13, "utf-8") in found
        assert (1, 13, "utf-8") in found  # a token that is a prefix of another
        assert (1, 30, "utf-16-le") in found


def test_no_hits_and_reprs_hide_values(tmp_path: Path) -> None:
    path = tmp_path / "clean.bin"
    path.write_bytes(b"nothing to see" * 100)
    assert scan_bytes_for_tokens(path, ["Quixwell"]) == []
    assert "secret" not in repr(MetadataString("ifd0.Artist", "secret"))


def test_inventory_lists_strings_and_associated_images(planted: dict[str, object]) -> None:
    svs = planted["svs"].path  # type: ignore[attr-defined]
    inventory = list_metadata(svs)
    assert {"label", "macro", "thumbnail"} <= set(inventory.associated_images)
    locations = {s.location for s in inventory.strings}
    assert "ifd0.ImageDescription" in locations
    assert any(loc.endswith("ExifTag.BodySerialNumber") for loc in locations)


def _reference_hits(data: bytes, tokens: list[str]) -> set[tuple[int, int, str]]:
    """Naive reference: every start offset where any variant matches, ASCII case folded."""
    lowered = data.lower()
    found: set[tuple[int, int, str]] = set()
    for index, token in enumerate(tokens):
        for form in {token, token.lower(), token.upper(), token.casefold()}:
            for encoding in ("utf-8", "latin-1", "utf-16-le"):
                try:
                    pattern = form.encode(encoding).lower()
                except UnicodeEncodeError:
                    continue
                if encoding == "latin-1" and pattern == form.encode("utf-8").lower():
                    encoding = "utf-8"  # ASCII: reported once, as UTF-8
                for start in range(len(lowered) - len(pattern) + 1):
                    if lowered[start : start + len(pattern)] == pattern:
                        found.add((index, start, encoding))
    return found


@pytest.mark.parametrize("use_hyperscan", [False, True])
def test_random_boundaries_match_a_naive_reference(use_hyperscan: bool) -> None:
    if use_hyperscan and importlib.util.find_spec("hyperscan") is None:
        pytest.fail("hyperscan is a dependency of slidestream-wsi and must be installed")
    rng = random.Random(20261127)
    tokens = ["Quixwell", "aa", "MRN-7781", "Ünsal", "aaa"]
    for _ in range(40):
        pieces = []
        for _ in range(rng.randint(5, 25)):
            token = rng.choice(tokens)
            form = rng.choice([token, token.upper(), token.lower()])
            encoded = form.encode(rng.choice(["utf-8", "latin-1", "utf-16-le"]), "replace")
            pieces += [rng.randbytes(rng.randint(0, 9)), encoded]
        data = b"".join(pieces)
        scanner = ByteTokenScanner(tokens, use_hyperscan=use_hyperscan)
        assert scanner.uses_hyperscan is use_hyperscan
        position = 0
        while position < len(data):
            step = rng.randint(1, 40)
            scanner.feed(data[position : position + step])
            position += step
        got = {(h.token_index, h.offset, h.encoding) for h in scanner.hits()}
        assert got == _reference_hits(data, tokens)
        assert got  # the planted tokens are there to be found


def test_both_backends_agree_on_a_file(tmp_path: Path) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(
        random.Random(7).randbytes(50_000) + b"xQUIXWELLx" + "mrn-7781".encode("utf-16-le")
    )
    tokens = ["Quixwell", "MRN-7781"]
    default = scan_bytes_for_tokens(path, tokens, chunk_bytes=4096)
    plain = ByteTokenScanner(tokens, use_hyperscan=False)
    plain.feed(path.read_bytes())
    assert default == plain.hits()
    assert [(h.token_index, h.encoding) for h in default] == [(0, "utf-8"), (1, "utf-16-le")]


def test_an_empty_token_is_refused() -> None:
    with pytest.raises(ValueError, match="empty token"):
        ByteTokenScanner(["ok", ""])


def test_stream_patched_output_hashes_input_and_output_and_scans_the_output(
    tmp_path: Path,
) -> None:
    rng = random.Random(9)
    data = rng.randbytes(300_000) + b"..Quixwell.." + rng.randbytes(999) + b"jonah"
    # One patch removes a token, one writes another, one appends past the end.
    patches = [(300_002, b"xxxxxxxx"), (400, b"QUIXWELL"), (len(data), b"tail bytes jonah")]
    path = tmp_path / "output.bin"
    path.write_bytes(data)
    apply_patches(path, patches)
    chunks = [data[i : i + 65_536] for i in range(0, len(data), 65_536)]

    streamed = stream_patched_output(chunks, len(data), patches, ["quixwell", "jonah"])

    output = path.read_bytes()
    assert streamed.input_sha256 == hashlib.sha256(data).hexdigest()
    assert streamed.input_size_bytes == len(data)
    assert streamed.output_sha256 == hashlib.sha256(output).hexdigest()
    assert streamed.output_size_bytes == len(output)
    assert sorted(streamed.hits, key=lambda h: h.offset) == sorted(
        scan_bytes_for_tokens(path, ["quixwell", "jonah"]), key=lambda h: h.offset
    )
    assert {h.offset for h in streamed.hits} == {400, len(data) - 5, len(data) + 11}


def test_stream_patched_output_refuses_an_input_of_another_size() -> None:
    with pytest.raises(ValueError, match="shorter"):
        stream_patched_output([b"abc"], 10, [], ["x"])
