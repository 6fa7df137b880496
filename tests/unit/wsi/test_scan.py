from __future__ import annotations

from pathlib import Path

from slidestream_wsi.scan import MetadataString, list_metadata, scan_bytes_for_tokens


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
