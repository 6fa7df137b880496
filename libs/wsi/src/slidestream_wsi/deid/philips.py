"""Philips TIFF ImageDescription (``DPUfsImport`` XML) scrubbing.

The description is a tree of ``Attribute`` elements named after DICOM attributes and Philips
internals. Only attributes that describe the pixel geometry and encoding are kept (allowlist
below); identity (``DICOM_PATIENT_*``, ``PIM_DP_UFS_BARCODE``), dates
(``DICOM_ACQUISITION_DATETIME``, calibration dates), devices (``DICOM_DEVICE_SERIAL_NUMBER``),
source file names and the base64 label/macro images embedded in ``PIM_DP_IMAGE_DATA`` go, and
so do the ``DPScannedImage`` objects of the label and macro.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from slidestream_wsi.deid.audit import AuditRecorder
from slidestream_wsi.deid.xmltext import local_name, parse_xml, serialise_xml

PHILIPS_KEPT_ATTRIBUTES = frozenset(
    {
        "DICOM_MANUFACTURER",
        "DICOM_MANUFACTURERS_MODEL_NAME",
        "DICOM_SOFTWARE_VERSIONS",
        "DICOM_BITS_ALLOCATED",
        "DICOM_BITS_STORED",
        "DICOM_HIGH_BIT",
        "DICOM_PIXEL_REPRESENTATION",
        "DICOM_SAMPLES_PER_PIXEL",
        "DICOM_PHOTOMETRIC_INTERPRETATION",
        "DICOM_PLANAR_CONFIGURATION",
        "DICOM_PIXEL_SPACING",
        "DICOM_LOSSY_IMAGE_COMPRESSION",
        "DICOM_LOSSY_IMAGE_COMPRESSION_METHOD",
        "DICOM_LOSSY_IMAGE_COMPRESSION_RATIO",
        "PIM_DP_SCANNED_IMAGES",
        "PIM_DP_IMAGE_TYPE",
        "PIM_DP_IMAGE_ROWS",
        "PIM_DP_IMAGE_COLUMNS",
        "PIM_DP_UFS_INTERFACE_VERSION",
    }
)
PHILIPS_KEPT_PREFIXES = (
    "PIIM_PIXEL_DATA_REPRESENTATION",
    "PIIM_DP_PIXEL_DATA_REPRESENTATION",
    "UFS_IMAGE_",
)
PHILIPS_ASSOCIATED_IMAGE_TYPES = frozenset({"LABELIMAGE", "MACROIMAGE"})
_NAME = re.compile(r"^[A-Z0-9_]{1,64}$")


def _kept(name: str) -> bool:
    return name in PHILIPS_KEPT_ATTRIBUTES or name.startswith(PHILIPS_KEPT_PREFIXES)


def scrub_philips_xml(text: str, audit: AuditRecorder) -> str:
    root = parse_xml(text)
    _scrub(root, audit)
    return serialise_xml(root, text)


def _image_type(data_object: ET.Element) -> str:
    for child in data_object:
        if local_name(child.tag) == "Attribute" and child.get("Name") == "PIM_DP_IMAGE_TYPE":
            return (child.text or "").strip().upper()
    return ""


def _record(node: ET.Element, audit: AuditRecorder) -> None:
    for sub in node.iter():
        if sub.text and sub.text.strip():
            audit.removed_value(sub.text)


def _scrub(element: ET.Element, audit: AuditRecorder) -> None:
    for child in list(element):
        tag = local_name(child.tag)
        if tag == "DataObject" and _image_type(child) in PHILIPS_ASSOCIATED_IMAGE_TYPES:
            _record(child, audit)
            audit.removed_field("philips.DPScannedImage." + _image_type(child))
            element.remove(child)
            continue
        if tag == "Attribute":
            name = child.get("Name", "")
            if not _kept(name):
                _record(child, audit)
                audit.removed_field("philips." + (name if _NAME.match(name) else "unknown"))
                element.remove(child)
                continue
        _scrub(child, audit)
