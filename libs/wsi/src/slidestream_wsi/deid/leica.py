"""Leica SCN collection XML (ImageDescription of directory 0) scrubbing, by allowlist.

What OpenSlide's leica driver and tifffile read is kept: the collection and view sizes and
offsets (nanometres), the pixel sizes and directory index of every ``<dimension>``, the objective,
numerical aperture and illumination source, and the scanner model. Removed: the ``<barcode>``
(Base64 text in the 2010/10/01 namespace), every ``name`` and ``uuid`` (slide and file names),
``<creationDate>``, the build timestamps in the device version, and any element or attribute not
listed below (users, comments, serials). The macro image (the ``<image>`` whose view covers the
whole collection) is dropped with its directories, and ``ifd`` indices are renumbered.
"""

from __future__ import annotations

import base64
import binascii
import re
import xml.etree.ElementTree as ET

from slidestream_wsi.deid.audit import AuditRecorder
from slidestream_wsi.deid.device import is_scanner_model
from slidestream_wsi.deid.xmltext import local_name, parse_xml, serialise_xml
from slidestream_wsi.errors import DeidentificationError

_NUMBER = re.compile(r"^-?\d+(\.\d+)?([eE][-+]?\d+)?$")
_VERSION_NUMBER = re.compile(r"\d+(?:\.\d+)+")
_ILLUMINATION = re.compile(r"^[a-z]{1,32}$")

# element -> (attributes kept when numeric, child elements kept)
SCN_ALLOWED_ELEMENTS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "scn": (frozenset(), frozenset({"collection"})),
    "collection": (frozenset({"sizeX", "sizeY"}), frozenset({"image"})),
    "image": (frozenset(), frozenset({"pixels", "view", "device", "scanSettings"})),
    "pixels": (frozenset({"sizeX", "sizeY"}), frozenset({"dimension"})),
    "dimension": (frozenset({"sizeX", "sizeY", "r", "c", "z", "ifd"}), frozenset()),
    "view": (
        frozenset({"sizeX", "sizeY", "offsetX", "offsetY", "spacingZ"}),
        frozenset(),
    ),
    "device": (frozenset(), frozenset()),
    "scanSettings": (frozenset(), frozenset({"objectiveSettings", "illuminationSettings"})),
    "objectiveSettings": (frozenset(), frozenset({"objective"})),
    "objective": (frozenset(), frozenset()),
    "illuminationSettings": (
        frozenset(),
        frozenset({"numericalAperture", "illuminationSource"}),
    ),
    "numericalAperture": (frozenset(), frozenset()),
    "illuminationSource": (frozenset(), frozenset()),
}
# Elements whose text is kept, and the shape it must have.
_TEXT_SHAPES: dict[str, re.Pattern[str]] = {
    "objective": _NUMBER,
    "numericalAperture": _NUMBER,
    "illuminationSource": _ILLUMINATION,
}


def scrub_scn_xml(text: str, ifd_renumbering: dict[int, int], audit: AuditRecorder) -> str:
    """The collection XML without identity, macro image or removed directories."""
    root = parse_xml(text)
    if local_name(root.tag) != "scn":
        raise DeidentificationError("Leica SCN description has no scn root")
    for collection in [c for c in root if local_name(c.tag) == "collection"]:
        size = (collection.get("sizeX"), collection.get("sizeY"))
        for image in [i for i in collection if local_name(i.tag) == "image"]:
            if _is_macro(image, size) or not _dimensions_kept(image, ifd_renumbering):
                _record(image, audit)
                audit.removed_field("leica.image")
                collection.remove(image)
    _scrub(root, audit)
    for element in root.iter():
        if local_name(element.tag) == "dimension":
            element.set("ifd", str(ifd_renumbering[int(element.get("ifd", "-1"))]))
    if not any(local_name(e.tag) == "dimension" for e in root.iter()):
        raise DeidentificationError("no main image is left in the Leica SCN collection")
    return serialise_xml(root, text)


def _is_macro(image: ET.Element, collection_size: tuple[str | None, str | None]) -> bool:
    """OpenSlide's rule: the view starts at (0, 0) and has the collection's size."""
    view = next((v for v in image if local_name(v.tag) == "view"), None)
    return view is not None and (
        view.get("offsetX") == "0"
        and view.get("offsetY") == "0"
        and (view.get("sizeX"), view.get("sizeY")) == collection_size
    )


def _dimensions_kept(image: ET.Element, ifd_renumbering: dict[int, int]) -> bool:
    for node in image.iter():
        if local_name(node.tag) == "dimension":
            try:
                if int(node.get("ifd", "")) not in ifd_renumbering:
                    return False
            except ValueError as exc:
                raise DeidentificationError("Leica SCN dimension without an IFD index") from exc
    return True


def _record(node: ET.Element, audit: AuditRecorder) -> None:
    for sub in node.iter():
        for value in sub.attrib.values():
            audit.removed_value(value)
        if sub.text and sub.text.strip():
            _record_text(local_name(sub.tag), sub.text, audit)


def _record_text(tag: str, text: str, audit: AuditRecorder) -> None:
    audit.removed_value(text)
    if tag == "barcode":
        # The 2010/10/01 namespace Base64-encodes the barcode; scan for the decoded text too.
        try:
            decoded = base64.b64decode(text.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return
        audit.removed_value(decoded)


def _scrub(element: ET.Element, audit: AuditRecorder) -> None:
    name = local_name(element.tag)
    kept_attributes, kept_children = SCN_ALLOWED_ELEMENTS[name]
    for child in list(element):
        child_name = local_name(child.tag)
        if child_name not in kept_children:
            _record(child, audit)
            audit.removed_field(f"leica.{child_name}" if child_name.isalnum() else "leica.element")
            element.remove(child)
            continue
        _scrub(child, audit)
    for attribute in list(element.attrib):
        value = element.attrib[attribute]
        if name == "device" and attribute in ("model", "version"):
            kept = _device_value(attribute, value)
            if kept == value:
                continue
            audit.removed_field(f"leica.device.{attribute}", value)
            if kept:
                element.set(attribute, kept)
            else:
                del element.attrib[attribute]
            continue
        if local_name(attribute) in kept_attributes and _NUMBER.match(value):
            continue
        audit.removed_field(f"leica.{name}.{local_name(attribute)}", value)
        del element.attrib[attribute]
    shape = _TEXT_SHAPES.get(name)
    text = (element.text or "").strip()
    if text and (shape is None or not shape.match(text)):
        _record_text(name, text, audit)
        audit.removed_field(f"leica.{name}.text")
        element.text = None
    if element.tail and element.tail.strip():
        audit.removed_value(element.tail)
        element.tail = None


def _device_value(attribute: str, value: str) -> str:
    """The scanner model as written; of the version only its numbers (no build timestamps)."""
    if attribute == "model":
        return value if is_scanner_model(value) else ""
    return ";".join(_VERSION_NUMBER.findall(value))
