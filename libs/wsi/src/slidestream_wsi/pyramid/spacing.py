"""The one rule for a slide's pixel spacing and objective power, read from the file alone.

Every caller (conversion, QC, de-identification, inference) gets its spacing from here. The
rule, for a TIFF-family file: the first of these that is present and plausible wins, in order of
how directly the scanner states the full-resolution spacing:

1. OME-XML ``Pixels/@PhysicalSizeX|Y`` with their units (OME data model), for OME-TIFF;
2. Aperio's ``MPP =`` in the level-0 ImageDescription (Aperio writes placeholder resolution tags);
3. Ventana's iScan XMP ``ScanRes`` (µm/px; its resolution tags are absent);
4. Philips' ``DICOM_PIXEL_SPACING`` of the WSI image, else of its first (full-resolution)
   pixel-data representation (DICOM PS3.3 C.7.6.2.1.1: row, then column spacing, in mm);
5. Leica SCN's XML: the main image's (the one with the most pixels) ``view`` size in nm over
   its ``pixels`` size;
6. the level-0 XResolution / YResolution with an absolute ResolutionUnit (TIFF 6.0 §8): NDPI,
   generic TIFF and the converter's own output.

A DICOM WSI instance states its own spacing (PS3.3 C.8.12.4 Pixel Measures, PixelSpacing).
"Plausible" is :data:`PLAUSIBLE_MPP_UM`. These are the values OpenSlide reports for the vendors it
reads (tests hold them to it), without loading OpenSlide: QC reads the spacing too, and loading
OpenSlide costs more than QC's whole metadata read.
"""

from __future__ import annotations

import math
import re
from typing import Any

import tifffile
from defusedxml import ElementTree

PLAUSIBLE_MPP_UM = (0.05, 500.0)
"""µm/px a slide level can have: a 100x oil objective (0.05) to a macro photograph (500)."""

Mpp = tuple[float, float]
"""Microns per pixel along x (columns), then y (rows)."""

_APERIO_MPP = re.compile(r"\bMPP\s*=\s*([0-9.eE+-]+)")
_APERIO_APPMAG = re.compile(r"\bAppMag\s*=\s*([0-9.eE+-]+)")
_NM_PER_UM = 1000.0
_UM_PER_MM = 1000.0
_OME_UNIT_TO_UM = {"µm": 1.0, "um": 1.0, "nm": 1e-3, "mm": 1e3, "cm": 1e4, "m": 1e6}
# TIFF 6.0 §8 ResolutionUnit: 2 = inch, 3 = centimetre; 1 (no unit) gives no spacing.
_UM_PER_RESOLUTION_UNIT = {2: 25_400.0, 3: 10_000.0}
_TIFF_XMP_TAG = 700  # Adobe XMP Specification part 3, §1.1.4: XMP packet in TIFF tag 700
_NDPI_MAGNIFICATION_TAG = 65421  # Hamamatsu's private tag: the objective's magnification


def positive(value: object) -> float | None:
    """``value`` as a finite positive float, else None."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def plausible(mpp: Mpp | None) -> Mpp | None:
    """``mpp`` when both axes lie in :data:`PLAUSIBLE_MPP_UM`, else None."""
    if mpp is None:
        return None
    low, high = PLAUSIBLE_MPP_UM
    return mpp if all(low <= value <= high for value in mpp) else None


def tiff_spacing(
    tif: tifffile.TiffFile, level0: tifffile.TiffPage
) -> tuple[Mpp | None, float | None]:
    """Level-0 spacing and objective power of a TIFF-family slide (the rule in the docstring)."""
    ome = _ome(tif.ome_metadata) if tif.is_ome and tif.ome_metadata else (None, None)
    description = str(level0.description or "")
    ventana = _ventana_xmp(tif)
    scn = _scn_main_image(tif.scn_metadata) if tif.is_scn and tif.scn_metadata else (None, None)
    candidates = (
        ome[0],
        _aperio(description, _APERIO_MPP),
        ventana[0],
        _philips(tif.philips_metadata) if tif.is_philips and tif.philips_metadata else None,
        scn[0],
        _resolution_mpp(level0),
    )
    mpp = next((found for found in map(plausible, candidates) if found), None)
    powers = (
        ome[1],
        positive(_aperio_value(description, _APERIO_APPMAG)),
        ventana[1],
        _ndpi_magnification(level0),
        scn[1],
    )
    return mpp, next((power for power in powers if power), None)


def dicom_spacing(ds: Any) -> Mpp | None:
    """PixelSpacing of the shared Pixel Measures (PS3.3 C.8.12.4; row spacing, then column
    spacing, in mm) in microns per pixel (x, y), when plausible."""
    try:
        spacing = ds.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0].PixelSpacing
        row_mm, column_mm = positive(spacing[0]), positive(spacing[1])
    except (AttributeError, IndexError, KeyError, TypeError, ValueError):
        return None
    if row_mm is None or column_mm is None:
        return None
    return plausible((column_mm * _UM_PER_MM, row_mm * _UM_PER_MM))


def dicom_objective_power(ds: Any) -> float | None:
    """ObjectiveLensPower of the first optical path (PS3.3 C.8.12.5)."""
    optical = ds.get("OpticalPathSequence")
    return positive(optical[0].get("ObjectiveLensPower")) if optical else None


def _aperio_value(description: str, pattern: re.Pattern[str]) -> str | None:
    match = pattern.search(description) if description.startswith("Aperio") else None
    return match.group(1) if match else None


def _aperio(description: str, pattern: re.Pattern[str]) -> Mpp | None:
    value = positive(_aperio_value(description, pattern))
    return (value, value) if value else None


def _resolution_mpp(page: tifffile.TiffPage) -> Mpp | None:
    """XResolution / YResolution (pixels per unit) and an absolute ResolutionUnit (TIFF 6.0 §8)."""
    um_per_unit = _UM_PER_RESOLUTION_UNIT.get(int(page.tags.valueof(296, 2)))
    if um_per_unit is None or 282 not in page.tags or 283 not in page.tags:
        return None
    per_unit_x, per_unit_y = page.resolution
    if not (per_unit_x > 0 and per_unit_y > 0):
        return None
    return um_per_unit / per_unit_x, um_per_unit / per_unit_y


def xml_root(xml: str | bytes) -> Any:
    try:
        return ElementTree.fromstring(xml)
    except Exception:  # defusedxml raises its own and expat's errors on bad or hostile XML
        return None


def local_tag(element: Any) -> str:
    return str(element.tag).rsplit("}", 1)[-1]


def _ome(xml: str) -> tuple[Mpp | None, float | None]:
    """PhysicalSizeX/Y of the first Pixels and NominalMagnification of the first Objective."""
    root = xml_root(xml)
    if root is None:
        return None, None
    pixels = next((e for e in root.iter() if local_tag(e) == "Pixels"), None)
    objective = next((e for e in root.iter() if local_tag(e) == "Objective"), None)
    power = positive(objective.get("NominalMagnification")) if objective is not None else None
    if pixels is None:
        return None, power
    sizes = [positive(pixels.get(f"PhysicalSize{axis}")) for axis in "XY"]
    # OME data model: PhysicalSize units default to µm.
    units = [_OME_UNIT_TO_UM.get(pixels.get(f"PhysicalSize{axis}Unit", "µm")) for axis in "XY"]
    if None in sizes or None in units:
        return None, power
    return (sizes[0] * units[0], sizes[1] * units[1]), power  # type: ignore[operator]


def iscan_element(tif: tifffile.TiffFile) -> Any:
    """Ventana's ``<iScan>`` element, from the first XMP tag (700) that holds one; ``None``
    when no directory has one or it does not parse."""
    for page in tif.pages:
        if not isinstance(page, tifffile.TiffPage):
            continue
        xmp = page.tags.valueof(_TIFF_XMP_TAG)
        if not isinstance(xmp, bytes) or b"<iScan" not in xmp:
            continue
        root = xml_root(xmp)
        return (
            None
            if root is None
            else next((e for e in root.iter() if local_tag(e) == "iScan"), None)
        )
    return None


def _ventana_xmp(tif: tifffile.TiffFile) -> tuple[Mpp | None, float | None]:
    """``ScanRes`` (µm/px) and ``Magnification`` of the iScan element in an XMP tag."""
    scan = iscan_element(tif)
    if scan is None:
        return None, None
    mpp = positive(scan.get("ScanRes"))
    return ((mpp, mpp) if mpp else None), positive(scan.get("Magnification"))


def _philips(xml: str) -> Mpp | None:
    """DICOM_PIXEL_SPACING of the WSI DPScannedImage, else of its first representation."""
    root = xml_root(xml)
    if root is None:
        return None
    for image in root.iter("DataObject"):
        if image.get("ObjectType") != "DPScannedImage":
            continue
        attributes = {a.get("Name"): a for a in image.findall("Attribute")}
        kind = attributes.get("PIM_DP_IMAGE_TYPE")
        if kind is None or (kind.text or "").strip() != "WSI":
            continue
        spacing = attributes.get("DICOM_PIXEL_SPACING")
        if spacing is None:
            spacing = image.find(
                "Attribute[@Name='PIIM_PIXEL_DATA_REPRESENTATION_SEQUENCE']/Array/DataObject/"
                "Attribute[@Name='DICOM_PIXEL_SPACING']"
            )
        return None if spacing is None else _philips_pixel_spacing(spacing.text or "")
    return None


def _philips_pixel_spacing(text: str) -> Mpp | None:
    """``"row_mm" "column_mm"`` (PS3.3 C.7.6.2.1.1) as µm/px (x, y)."""
    values = [positive(part.strip('"')) for part in text.split()]
    if len(values) != 2 or values[0] is None or values[1] is None:
        return None
    return values[1] * _UM_PER_MM, values[0] * _UM_PER_MM


def _ndpi_magnification(page: tifffile.TiffPage) -> float | None:
    return positive(page.tags.valueof(_NDPI_MAGNIFICATION_TAG)) if page.is_ndpi else None


def _scn_main_image(xml: str) -> tuple[Mpp | None, float | None]:
    """Spacing and objective of the SCN image with the most pixels (the main image, not the
    macro): its ``view`` states the imaged size in nanometres, its ``pixels`` the level-0 size."""
    root = xml_root(xml)
    if root is None:
        return None, None
    best: tuple[int, Mpp | None, float | None] = (-1, None, None)
    for image in (e for e in root.iter() if local_tag(e) == "image"):
        pixels = next((e for e in image if local_tag(e) == "pixels"), None)
        if pixels is None:
            continue
        width_px = int(positive(pixels.get("sizeX")) or 0)
        height_px = int(positive(pixels.get("sizeY")) or 0)
        if width_px * height_px <= best[0]:
            continue
        view = next((e for e in image if local_tag(e) == "view"), None)
        objective = next((e for e in image.iter() if local_tag(e) == "objective"), None)
        mpp: Mpp | None = None
        view_w_nm = positive(view.get("sizeX")) if view is not None else None
        view_h_nm = positive(view.get("sizeY")) if view is not None else None
        if view_w_nm and view_h_nm and width_px and height_px:
            mpp = (view_w_nm / _NM_PER_UM / width_px, view_h_nm / _NM_PER_UM / height_px)
        best = (
            width_px * height_px,
            mpp,
            positive(objective.text) if objective is not None else None,
        )
    return best[1], best[2]
