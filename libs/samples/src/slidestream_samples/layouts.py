"""Every planted layout by name: what the de-identification, QC and end-to-end tests, the demo
and the benchmarks iterate over."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

from slidestream_samples.aperio import APERIO_SCANNER_MODEL, make_svs
from slidestream_samples.dicom import DICOM_SCANNER_MODEL, make_dicom_series
from slidestream_samples.generic import GENERIC_SCANNER_MODEL, make_generic_tiff
from slidestream_samples.hamamatsu import NDPI_SCANNER_MODEL, make_ndpi
from slidestream_samples.leica import make_leica_scn
from slidestream_samples.ome import make_ome_tiff
from slidestream_samples.phi import PlantedSlide
from slidestream_samples.philips import PHILIPS_SCANNER_MODEL, make_philips_tiff
from slidestream_samples.ventana import VENTANA_SCANNER_MODEL, make_ventana_bif

LAYOUT_MAKERS: dict[str, Callable[[Path], PlantedSlide]] = {
    "svs": make_svs,
    "generic_tiff": make_generic_tiff,
    "ome_tiff": make_ome_tiff,
    "ndpi": make_ndpi,
    "philips_tiff": make_philips_tiff,
    "dicom": make_dicom_series,
    "philips_tiff_4x": functools.partial(make_philips_tiff, level_step=4),
    "leica_scn": make_leica_scn,
    "ventana_bif": make_ventana_bif,
}
TIFF_LAYOUTS = tuple(name for name in LAYOUT_MAKERS if name != "dicom")
"""The TIFF-based layouts: those de-identified in place (as patches)."""

SCANNER_MODEL_OF_LAYOUT: dict[str, str | None] = {
    "svs": APERIO_SCANNER_MODEL,  # ScannerType = in the ImageDescription
    "generic_tiff": GENERIC_SCANNER_MODEL,  # the Model tag (272)
    "ome_tiff": None,  # states no model
    "ndpi": NDPI_SCANNER_MODEL,  # the Model tag (272)
    "philips_tiff": PHILIPS_SCANNER_MODEL,  # DICOM_MANUFACTURERS_MODEL_NAME in the XML
    "dicom": DICOM_SCANNER_MODEL,  # ManufacturerModelName (0008,1090)
    "philips_tiff_4x": PHILIPS_SCANNER_MODEL,
    "leica_scn": "Leica SCN400",  # the main image's device model, its scanner part
    "ventana_bif": VENTANA_SCANNER_MODEL,  # the iScan XMP packet's ScannerModel
}
"""The scanner model each layout states, as ``describe_slide`` reads it (and de-identification
keeps it)."""
