"""A Philips TIFF: PHI and the level geometry in the DPUfsImport XML, the label embedded as
Base64 JPEG in that XML as well as a page."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import tifffile
from PIL import Image

from slidestream_samples.labels import label_image, macro_image
from slidestream_samples.phi import TOKENS, PlantedSlide
from slidestream_samples.pixels import LEVEL0_HEIGHT_PX, LEVEL0_WIDTH_PX, tissue
from slidestream_samples.tiff_common import common_tags, write_levels

PHILIPS_SOFTWARE = "Philips DP v1.0"


PHILIPS_SCANNER_MODEL = "UFS Scanner"
"""DICOM (0008,1090) Manufacturer's Model Name as the sample's DPUfsImport XML states it."""


def _attribute(name: str, value: str, group: str = "0x0000", element: str = "0x0000") -> str:
    return (
        f'<Attribute Name="{name}" Group="{group}" Element="{element}" PMSVR="IString">'
        f"{value}</Attribute>"
    )


def _representation(i: int, level0_size: tuple[int, int], level_step: int) -> str:
    """One PixelDataRepresentation: level ``i``'s size and DICOM pixel spacing (in mm)."""
    width, height = (side // level_step**i for side in level0_size)
    spacing_mm = 0.00025 * level_step**i
    return (
        '<DataObject ObjectType="PixelDataRepresentation">'
        + _attribute("PIIM_PIXEL_DATA_REPRESENTATION_NUMBER", str(i))
        + _attribute("PIIM_PIXEL_DATA_REPRESENTATION_COLUMNS", str(width))
        + _attribute("PIIM_PIXEL_DATA_REPRESENTATION_ROWS", str(height))
        + _attribute("DICOM_PIXEL_SPACING", f'"{spacing_mm}" "{spacing_mm}"')
        + "</DataObject>"
    )


def _philips_xml(level0_size: tuple[int, int], level_step: int) -> str:
    label_jpeg = io.BytesIO()
    Image.fromarray(label_image()).save(label_jpeg, "JPEG")
    label_b64 = base64.b64encode(label_jpeg.getvalue()).decode()
    barcode_b64 = base64.b64encode(TOKENS["barcode"].encode()).decode()
    levels_xml = "".join(_representation(i, level0_size, level_step) for i in range(3))
    return (
        '<?xml version="1.0" encoding="UTF-8" ?>'
        '<DataObject ObjectType="DPUfsImport">'
        + _attribute("DICOM_PATIENT_NAME", TOKENS["patient_name"], "0x0010", "0x0010")
        + _attribute("DICOM_PATIENT_ID", TOKENS["patient_id"], "0x0010", "0x0020")
        + _attribute("DICOM_ACCESSION_NUMBER", TOKENS["accession"], "0x0008", "0x0050")
        + _attribute("DICOM_ACQUISITION_DATETIME", "19871123040506.000000", "0x0008", "0x002A")
        + _attribute("DICOM_DEVICE_SERIAL_NUMBER", TOKENS["serial"], "0x0018", "0x1000")
        + _attribute("DICOM_INSTITUTION_NAME", TOKENS["institution"], "0x0008", "0x0080")
        + _attribute("DICOM_MANUFACTURER", "PHILIPS", "0x0008", "0x0070")
        + _attribute("DICOM_MANUFACTURERS_MODEL_NAME", PHILIPS_SCANNER_MODEL, "0x0008", "0x1090")
        + _attribute("PIM_DP_UFS_BARCODE", barcode_b64)
        + _attribute("PIM_DP_SOURCE_FILE", TOKENS["filename"])
        + _attribute("PIM_DP_UFS_INTERFACE_VERSION", "5.0")
        + '<Attribute Name="PIM_DP_SCANNED_IMAGES" Group="0x301D" Element="0x1003" '
        'PMSVR="IDataObjectArray"><Array>'
        '<DataObject ObjectType="DPScannedImage">'
        + _attribute("PIM_DP_IMAGE_TYPE", "WSI")
        + _attribute("DICOM_DERIVATION_DESCRIPTION", TOKENS["free_text"])
        + '<Attribute Name="PIIM_PIXEL_DATA_REPRESENTATION_SEQUENCE" Group="0x1001" '
        'Element="0x8B01" PMSVR="IDataObjectArray"><Array>' + levels_xml + "</Array></Attribute>"
        "</DataObject>"
        '<DataObject ObjectType="DPScannedImage">'
        + _attribute("PIM_DP_IMAGE_TYPE", "LABELIMAGE")
        + _attribute("PIM_DP_IMAGE_DATA", label_b64)
        + "</DataObject>"
        "</Array></Attribute>"
        "</DataObject>"
    )


def make_philips_tiff(
    directory: Path,
    level_step: int = 2,
    *,
    level0_size: tuple[int, int] = (LEVEL0_WIDTH_PX, LEVEL0_HEIGHT_PX),
    xml_level_step: int | None = None,
) -> PlantedSlide:
    """A Philips TIFF of three levels that step by ``level_step`` (2, or 4 as some scanners
    write); its XML lists each level's size and DICOM pixel spacing (0.25 µm at level 0).
    ``xml_level_step`` makes the XML describe other levels than the pages hold (a broken file)."""
    name = "philips_tiff" if level_step == 2 else f"philips_tiff_{level_step}x"
    path = directory / f"planted_{name}.tiff"
    level0 = tissue(*level0_size)
    lv = [level0[:: level_step**i, :: level_step**i].copy() for i in range(3)]
    xml = _philips_xml(level0_size, xml_level_step or level_step)
    with tifffile.TiffWriter(path) as tif:
        write_levels(tif, lv, xml, common_tags()[:6], PHILIPS_SOFTWARE)
        tif.write(
            label_image(),
            compression="lzw",
            description="Label",
            metadata=None,
            software=PHILIPS_SOFTWARE,
        )
        tif.write(
            macro_image(),
            compression="jpeg",
            photometric="rgb",
            description="Macro",
            metadata=None,
            software=PHILIPS_SOFTWARE,
        )
    return PlantedSlide(name, path, (path,))
