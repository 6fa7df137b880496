"""The scanner model a slide states, read from the file alone (the catalogue filters on it).

Where each format states it (the model, never the unit's serial number or ID):

* Aperio SVS: ``ScannerType =`` in the level-0 ImageDescription (GT 450 and later; older
  ScanScope files state only ``ScanScope ID``, the unit's identifier, which is not a model);
* Philips TIFF: ``DICOM_MANUFACTURERS_MODEL_NAME`` of the DPUfsImport XML (DICOM (0008,1090));
* Leica SCN: the main image's ``<device model="...">``, whose first ``;``-separated part is the
  scanner (the second names the product family, as the version's second part is the software's);
* Ventana BIF: the iScan XMP packet's ``ScannerModel``;
* any TIFF, and the fallback for the above (Hamamatsu NDPI writes its model, e.g. ``C13220``,
  only here): the level-0 ``Model`` tag (TIFF 6.0 §8, tag 272);
* DICOM WSI: ManufacturerModelName (0008,1090; PS3.3 C.7.5.1 General Equipment).

``None`` when the file states none. Not patient data, but text from an untrusted file: only
printable characters are kept, whitespace runs become one space, and at most
:data:`SCANNER_MODEL_MAX_CHARS` characters.
"""

from __future__ import annotations

import re
from typing import Any

import tifffile

from slidestream_wsi.detect import SlideFormat
from slidestream_wsi.pyramid.spacing import iscan_element, local_tag, xml_root

SCANNER_MODEL_MAX_CHARS = 200
_TIFF_MODEL_TAG = 272
_APERIO_SCANNER_TYPE = re.compile(r"^\s*Scanner ?Type\s*=\s*(.*?)\s*$")
_PHILIPS_MODEL_ATTRIBUTE = "DICOM_MANUFACTURERS_MODEL_NAME"
_WHITESPACE = re.compile(r"\s+")


def bounded_model(value: object) -> str | None:
    """``value`` as printable text of at most :data:`SCANNER_MODEL_MAX_CHARS` characters;
    ``None`` when nothing printable is left."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if not isinstance(value, str):
        return None
    spaced = _WHITESPACE.sub(" ", value)
    printable = "".join(ch for ch in spaced if ch.isprintable() and ch != "\ufffd").strip()
    return printable[:SCANNER_MODEL_MAX_CHARS].rstrip() or None


def tiff_scanner_model(
    tif: tifffile.TiffFile, level0: tifffile.TiffPage, fmt: SlideFormat
) -> str | None:
    """The model a TIFF-family slide of format ``fmt`` states (the rule in the docstring)."""
    stated: object = None
    if fmt is SlideFormat.APERIO_SVS:
        stated = _aperio_scanner_type(str(level0.description or ""))
    elif fmt is SlideFormat.PHILIPS_TIFF and tif.philips_metadata:
        stated = _philips_model(tif.philips_metadata)
    elif fmt is SlideFormat.LEICA_SCN and tif.scn_metadata:
        stated = _scn_device_model(tif.scn_metadata)
    elif fmt is SlideFormat.VENTANA_BIF:
        scan = iscan_element(tif)
        stated = None if scan is None else scan.get("ScannerModel")
    return bounded_model(stated) or bounded_model(level0.tags.valueof(_TIFF_MODEL_TAG))


def dicom_scanner_model(ds: Any) -> str | None:
    """ManufacturerModelName (0008,1090) of a DICOM WSI instance."""
    return bounded_model(str(ds.get("ManufacturerModelName") or ""))


def _aperio_scanner_type(description: str) -> str | None:
    if not description.startswith("Aperio"):
        return None
    for pair in description.split("|")[1:]:
        match = _APERIO_SCANNER_TYPE.match(pair)
        if match:
            return match.group(1)
    return None


def _philips_model(xml: str) -> str | None:
    root = xml_root(xml)
    if root is None:
        return None
    found = next(
        (a for a in root.iter("Attribute") if a.get("Name") == _PHILIPS_MODEL_ATTRIBUTE), None
    )
    return None if found is None else str(found.text or "").strip().strip('"')


def _scn_device_model(xml: str) -> str | None:
    """The first part of the ``device`` model of the SCN image with the most pixels (the main
    image, as the spacing rule picks it; the macro image states its own device)."""
    root = xml_root(xml)
    if root is None:
        return None
    best: tuple[int, str | None] = (-1, None)
    for image in (e for e in root.iter() if local_tag(e) == "image"):
        pixels = next((e for e in image if local_tag(e) == "pixels"), None)
        device = next((e for e in image if local_tag(e) == "device"), None)
        if pixels is None or device is None:
            continue
        try:
            area = int(pixels.get("sizeX", "0")) * int(pixels.get("sizeY", "0"))
        except ValueError:
            continue
        if area > best[0]:
            best = (area, str(device.get("model") or "").split(";", 1)[0])
    return best[1]
