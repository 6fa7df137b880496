"""Aperio SVS ImageDescription: keep the structural header and numeric scan parameters.

The description is ``<header>|key = value|key = value...`` (the format OpenSlide's aperio driver
and tiffslide parse). Header lines are kept only when they match the shapes Aperio writes
(library version, level geometry, ``label``/``macro`` size); key/value pairs only when the key
is on the allowlist below and the value is a number, or the key names the scanner's model
(``ScannerType``) and the value looks like one (:mod:`slidestream_wsi.deid.device`). Everything
else (Filename, Date, Time, User, ScanScope ID, Barcode, ImageID, Title, free text...) is removed.
"""

from __future__ import annotations

import re

from slidestream_wsi.deid.audit import AuditRecorder
from slidestream_wsi.deid.device import is_scanner_model

# Optical and geometric parameters that readers use (MPP, AppMag) or that describe the scan
# without naming anything; their values must be numbers.
APERIO_KEPT_NUMERIC_KEYS = frozenset(
    {
        "AppMag",
        "MPP",
        "StripeWidth",
        "OriginalWidth",
        "OriginalHeight",
        "Originalheight",
        "Filtered",
        "Left",
        "Top",
        "LineCameraSkew",
        "LineAreaXOffset",
        "LineAreaYOffset",
        "Focus Offset",
        "Exposure Time",
        "Exposure Scale",
        "Gamma",
    }
)
APERIO_KEPT_MODEL_KEYS = frozenset({"ScannerType", "Scanner Type"})
"""The scanner's model (GT 450 and later); ``ScanScope ID`` is the unit's own ID and goes."""
# Keys Aperio is known to write that carry identity, dates, devices or free text; used only to
# name what was removed in the audit (an unknown key is named generically, never by its text).
APERIO_KNOWN_KEYS = APERIO_KEPT_NUMERIC_KEYS | frozenset(
    {
        "Filename",
        "Date",
        "Time",
        "Time Zone",
        "User",
        "ScanScope ID",
        "Barcode",
        "Parmset",
        "ImageID",
        "Title",
        "Rack",
        "Slide",
        "DSR ID",
        "Session Mode",
        "ScannerType",
        "Copyright",
        "Comment",
        "Comments",
        "ICC Profile",
        "Icc Profile",
        "Focus Method",
        "Scanner Type",
    }
)
_NUMBER = re.compile(r"^-?\d+(\.\d+)?([eE][-+]?\d+)?$")
_HEADER_LINES = (
    re.compile(
        r"^Aperio (Image Library|Leica Biosystems GT450|Leica Biosystems [A-Z0-9]{2,8})"
        r" v?[\d.]+ ?$"
    ),
    re.compile(
        r"^\d+x\d+ (\[\d+,\d+ \d+x\d+\] )?\(\d+x\d+\) [A-Z0-9]{2,8}(/[A-Za-z]{2,6})?"
        r"( Q=\d+)? ?$"
    ),
    re.compile(r"^\d+x\d+ -> \d+x\d+ - ?$"),
    re.compile(r"^(label|macro) \d+x\d+ ?$"),
    re.compile(r"^Aperio Image Library v[\d.]+ ?$"),
)
_SEPARATORS = re.compile(r"(\r\n|\n|;)")
MINIMAL_HEADER = "Aperio Image Library"
"""What stays when no header line survives: readers detect Aperio by this prefix."""


def scrub_aperio_description(description: str, audit: AuditRecorder) -> str:
    """The description with every non-allowlisted header line and key/value pair removed."""
    header, *pairs = description.split("|")
    kept_header = _scrub_header(header, audit)
    kept_pairs: list[str] = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        value = value.strip()
        if sep and key in APERIO_KEPT_NUMERIC_KEYS and _NUMBER.match(value):
            kept_pairs.append(f"{key} = {value}")
            continue
        if sep and key in APERIO_KEPT_MODEL_KEYS and is_scanner_model(value):
            kept_pairs.append(f"{key} = {value}")
            continue
        name = key if key in APERIO_KNOWN_KEYS else "unknown_key"
        audit.removed_field(f"aperio.{name}", value if sep else pair)
    return "|".join([kept_header, *kept_pairs])


def _scrub_header(header: str, audit: AuditRecorder) -> str:
    parts = _SEPARATORS.split(header)
    out = ""
    pending_separator = ""
    for index, part in enumerate(parts):
        if index % 2:  # a separator
            pending_separator = part
            continue
        if any(p.match(part) for p in _HEADER_LINES):
            out += (pending_separator if out else "") + part
        elif part.strip():
            audit.removed_field("aperio.header_line", part)
        pending_separator = ""
    if not out.startswith("Aperio"):
        out = MINIMAL_HEADER + ("\r\n" + out if out else "")
    return out
