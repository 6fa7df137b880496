"""Ventana / Roche BIF metadata scrubbing: XMP packets (tag 700) and ImageDescriptions.

Directory 0 carries an ``<iScan>`` packet whose every attribute OpenSlide publishes as a
``ventana.*`` property (BarCode1D/2D, ScanDate, UserName, UnitNumber, SlideAnnotation...): only
the optical attributes below are kept, when numeric, and ``ScannerModel`` when it looks like a
model (:mod:`slidestream_wsi.deid.device`); its child elements go. The level-0
directory carries ``<EncodeInfo>`` (tile stitching: OpenSlide's ventana driver needs
SlideStitchInfo/ImageInfo/TileJointInfo and AoiOrigin): only those elements and their numeric
geometry attributes are kept. ImageDescriptions are rebuilt from their parsed fields
(``level=N mag=M quality=Q``) or kept when they are one of the fixed names readers match.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from slidestream_wsi.deid.audit import AuditRecorder
from slidestream_wsi.deid.device import is_scanner_model
from slidestream_wsi.deid.xmltext import local_name, parse_xml, serialise_xml

VENTANA_SOFTWARE_DEFAULT = "ScanOutputManager"
"""Software written when the original is not a plain Ventana product name (tifffile detects BIF
by a Software value starting with this, or containing "Ventana")."""
ISCAN_KEPT_NUMERIC_ATTRIBUTES = frozenset(
    {"Magnification", "ScanRes", "Z-layers", "Z-spacing", "Z-offset"}
)
ISCAN_MODEL_ATTRIBUTE = "ScannerModel"
# element -> attributes kept (numeric, except Direction)
ENCODE_INFO_ALLOWED: dict[str, frozenset[str]] = {
    "EncodeInfo": frozenset({"Ver"}),
    "SlideStitchInfo": frozenset(),
    "ImageInfo": frozenset(
        {"AOIScanned", "AOIIndex", "Width", "Height", "NumRows", "NumCols", "Pos-X", "Pos-Y"}
    ),
    "TileJointInfo": frozenset(
        {"FlagJoined", "Confidence", "Direction", "Tile1", "Tile2", "OverlapX", "OverlapY"}
    ),
    "AoiOrigin": frozenset(),
    "AOI": frozenset({"OriginX", "OriginY"}),
}
FIXED_DESCRIPTIONS = frozenset({"Label Image", "Label_Image", "Thumbnail"})
_DIRECTIONS = frozenset({"LEFT", "RIGHT", "UP", "DOWN"})
_NUMBER = re.compile(r"^-?\d+(\.\d+)?([eE][-+]?\d+)?$")
_AOI = re.compile(r"^AOI\d{1,4}$")
_SOFTWARE = re.compile(r"^(ScanOutputManager|Ventana)[A-Za-z0-9 ._-]{0,40}$")
_LEVEL_FIELDS = ("level", "mag", "quality")


def scrub_bif_xmp(text: str, audit: AuditRecorder) -> str | None:
    """The scrubbed packet, or ``None`` when its root is not one BIF readers use."""
    root = parse_xml(text)
    name = local_name(root.tag)
    if name == "iScan":
        _scrub_iscan(root, audit)
    elif name == "EncodeInfo":
        _scrub_encode_info(root, audit)
    else:
        _record(root, audit)
        audit.removed_field("ventana.xmp")
        return None
    return serialise_xml(root, text)


def scrub_bif_description(text: str, audit: AuditRecorder) -> str | None:
    """A level's ``level=N mag=M quality=Q`` rebuilt from its numbers; fixed names kept."""
    stripped = text.strip()
    if stripped in FIXED_DESCRIPTIONS:
        return stripped
    fields = dict(pair.split("=", 1) for pair in stripped.split() if "=" in pair)
    kept = [
        f"{key}={fields[key]}"
        for key in _LEVEL_FIELDS
        if key in fields and _NUMBER.match(fields[key])
    ]
    if not kept or not kept[0].startswith("level="):
        audit.removed_field("ventana.ImageDescription", text)
        return None
    rebuilt = " ".join(kept)
    if rebuilt != stripped:
        audit.removed_field("ventana.ImageDescription", text)
    return rebuilt


def bif_software(current: str, audit: AuditRecorder) -> str:
    """The Software value for the first directory: a Ventana product name and version only."""
    if _SOFTWARE.match(current):
        return current
    audit.removed_field("tiff.Software", current)
    return VENTANA_SOFTWARE_DEFAULT


def _record(node: ET.Element, audit: AuditRecorder) -> None:
    for sub in node.iter():
        for value in sub.attrib.values():
            audit.removed_value(value)
        if sub.text and sub.text.strip():
            audit.removed_value(sub.text)


def _scrub_iscan(root: ET.Element, audit: AuditRecorder) -> None:
    for child in list(root):
        _record(child, audit)
        audit.removed_field("ventana.iScan.child")
        root.remove(child)
    for attribute in list(root.attrib):
        value = root.attrib[attribute]
        if attribute in ISCAN_KEPT_NUMERIC_ATTRIBUTES and _NUMBER.match(value):
            continue
        if attribute == ISCAN_MODEL_ATTRIBUTE and is_scanner_model(value):
            continue
        safe = attribute if re.match(r"^[A-Za-z0-9_-]{1,64}$", attribute) else "unknown"
        audit.removed_field(f"ventana.{safe}", value)
        del root.attrib[attribute]
    root.text = None


def _scrub_encode_info(element: ET.Element, audit: AuditRecorder) -> None:
    name = local_name(element.tag)
    allowed = ENCODE_INFO_ALLOWED["AOI" if _AOI.match(name) else name]
    for child in list(element):
        child_name = local_name(child.tag)
        if child_name in ENCODE_INFO_ALLOWED or _AOI.match(child_name):
            _scrub_encode_info(child, audit)
            continue
        _record(child, audit)
        audit.removed_field("ventana.EncodeInfo.element")
        element.remove(child)
    for attribute in list(element.attrib):
        value = element.attrib[attribute]
        if attribute in allowed and (
            _NUMBER.match(value) or (attribute == "Direction" and value in _DIRECTIONS)
        ):
            continue
        audit.removed_field("ventana.EncodeInfo.attribute", value)
        del element.attrib[attribute]
    if element.text and element.text.strip():
        audit.removed_value(element.text)
        element.text = None
