"""De-identification keeps the scanner's model (the catalogue filters on it) only when it looks
like a product name; the unit's ID and serial, and a model field misused for text, go."""

from __future__ import annotations

import pytest

from slidestream_wsi.deid.aperio import scrub_aperio_description
from slidestream_wsi.deid.audit import AuditRecorder
from slidestream_wsi.deid.device import is_scanner_model
from slidestream_wsi.deid.ventana import scrub_bif_xmp

HEADER = "Aperio Image Library v12.0.15\r\n2048x1536 (256x256) JPEG/RGB Q=90"


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        ("GT450", True),
        ("Leica SCN400;Leica SCN", True),
        ("VENTANA DP 200", True),
        ("Dr. O'Brien's lab", False),  # an apostrophe: not a product name
        ("1234-5678", False),  # starts with a digit: a serial, not a model
        ("scanned 23/11/1987", False),
        ("x" * 65, False),
        ("", False),
    ],
)
def test_what_counts_as_a_model(value: str, kept: bool) -> None:
    assert is_scanner_model(value) is kept


def test_aperio_keeps_scanner_type_and_drops_the_scanscope_id() -> None:
    audit = AuditRecorder()
    description = f"{HEADER}|MPP = 0.25|ScanScope ID = SS1234|ScannerType = GT450|User = jdoe"
    assert (
        scrub_aperio_description(description, audit) == f"{HEADER}|MPP = 0.25|ScannerType = GT450"
    )
    finished = audit.finish()
    assert {"aperio.ScanScope ID", "aperio.User"} <= set(finished.removed_fields)
    assert "SS1234" in finished.removed_values


def test_aperio_drops_a_scanner_type_that_is_not_a_model() -> None:
    audit = AuditRecorder()
    description = f"{HEADER}|ScannerType = lab of Dr. O'Brien, 23/11/1987"
    assert scrub_aperio_description(description, audit) == HEADER
    assert "aperio.ScannerType" in audit.finish().removed_fields


def test_ventana_keeps_the_scanner_model_attribute_only_when_it_is_one() -> None:
    audit = AuditRecorder()
    kept = scrub_bif_xmp(
        '<iScan ScannerModel="VENTANA DP 200" UnitNumber="U-1" ScanRes="0.25"/>', audit
    )
    assert kept == '<iScan ScannerModel="VENTANA DP 200" ScanRes="0.25" />'
    dropped = scrub_bif_xmp('<iScan ScannerModel="J. Doe &lt;x&gt;" ScanRes="0.25"/>', audit)
    assert dropped == '<iScan ScanRes="0.25" />'
    assert {"U-1", "J. Doe <x>"} <= audit.finish().removed_values
