from __future__ import annotations

import json

import pytest

from slidestream_upload.domain.manifest import (
    ArrivedFile,
    ManifestError,
    ManifestRow,
    parse_manifest,
    reconcile,
)

SHA_A = "a" * 64
SHA_B = "b" * 64


def test_csv_manifest_keeps_extra_columns() -> None:
    content = (
        "filename,sha256,case_id,specimen_id,species,organ,stain,scanner\n"
        f"s1.svs,{SHA_A},C-1,S-1,human,colon,HE,GT450\n"
    ).encode()
    [row] = parse_manifest(content, "text/csv")
    assert row == ManifestRow(
        filename="s1.svs",
        sha256=SHA_A,
        case_id="C-1",
        specimen_id="S-1",
        species="human",
        organ="colon",
        stain="HE",
        extra={"scanner": "GT450"},
    )


def test_json_manifest_in_either_shape() -> None:
    rows = [{"filename": "a.svs", "sha256": SHA_A}, {"filename": "b.svs", "sha256": SHA_B}]
    assert len(parse_manifest(json.dumps(rows).encode(), "application/json")) == 2
    assert len(parse_manifest(json.dumps({"slides": rows}).encode(), "application/json")) == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"filename,sha256\n", "no rows"),
        (b"filename,sha256\nx.svs,123\n", "row 1: sha256"),
        (b"sha256\n" + SHA_A.encode() + b"\n", "row 1: filename"),
        (f"filename,sha256\na.svs,{SHA_A}\na.svs,{SHA_B}\n".encode(), "twice"),
        (b"[1, 2]", "list of objects"),
        (b"\xff\xfe", "UTF-8"),
        (f"filename,sha256,mpp_um\na.svs,{SHA_A},250 nm\n".encode(), "row 1: mpp_um: unit 'nm'"),
        (
            f"filename,sha256,objective_power\na.svs,{SHA_A},400x\n".encode(),
            "row 1: objective_power: 400x is outside",
        ),
    ],
)
def test_bad_manifests_say_why(content: bytes, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        parse_manifest(content, "text/csv")


def test_reconcile_reports_every_kind_of_difference() -> None:
    rows = [
        ManifestRow(filename="ok.svs", sha256=SHA_A),
        ManifestRow(filename="bad.svs", sha256=SHA_A),
        ManifestRow(filename="missing.svs", sha256=SHA_A),
        ManifestRow(filename="pending.svs", sha256=SHA_A),
    ]
    arrived = [
        ArrivedFile("ok.svs", SHA_A, "1"),
        ArrivedFile("bad.svs", SHA_B, "2"),
        ArrivedFile("extra.svs", SHA_B, "3"),
        ArrivedFile("pending.svs", None, "4"),
    ]
    report = reconcile(rows, arrived)
    assert report.matched == ["ok.svs"]
    assert report.checksum_mismatch == ["bad.svs"]
    assert report.missing == ["missing.svs"]
    assert report.extra == ["extra.svs"]
    assert report.pending == ["pending.svs"]
    assert not report.complete
