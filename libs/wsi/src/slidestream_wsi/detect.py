"""Format detection from content (magic bytes and structure), never from a file name."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path, PurePosixPath

from slidestream_wsi.archive import ZIP_MAGIC, ArchiveListing, check_zip, read_member_head
from slidestream_wsi.errors import UnsupportedFormatError
from slidestream_wsi.limits import DEFAULT_LIMITS, SlideLimits
from slidestream_wsi.source import SourceLike, as_source
from slidestream_wsi.tiff.structure import open_tifffile, read_tiff_header, walk_tiff

# DICOM PS3.10 §7.1: a 128-byte preamble, then "DICM".
DICOM_PREAMBLE_BYTES = 128
DICOM_MAGIC = b"DICM"
# DICOM PS3.4 Annex B: VL Whole Slide Microscopy Image Storage.
WSI_SOP_CLASS_UID = "1.2.840.10008.5.1.4.1.1.77.1.6"

SNIFF_BYTES = 132
"""Enough for every container signature (the DICOM magic ends at byte 132)."""
# Members of a zipped DICOM series that are not instances and may be skipped.
_DICOM_ZIP_IGNORED_NAMES = frozenset({"dicomdir"})


class SlideFormat(StrEnum):
    """What a slide is, as far as reading and de-identifying it goes."""

    APERIO_SVS = "aperio_svs"
    GENERIC_TIFF = "generic_tiff"
    OME_TIFF = "ome_tiff"
    HAMAMATSU_NDPI = "hamamatsu_ndpi"
    PHILIPS_TIFF = "philips_tiff"
    LEICA_SCN = "leica_scn"
    VENTANA_BIF = "ventana_bif"
    DICOM_WSI = "dicom_wsi"
    DICOM_WSI_ZIP = "dicom_wsi_zip"
    MIRAX_ZIP = "mirax_zip"


SCANNER_VENDOR: dict[SlideFormat, str] = {
    SlideFormat.APERIO_SVS: "aperio",
    SlideFormat.HAMAMATSU_NDPI: "hamamatsu",
    SlideFormat.PHILIPS_TIFF: "philips",
    SlideFormat.LEICA_SCN: "leica",
    SlideFormat.VENTANA_BIF: "ventana",
    SlideFormat.GENERIC_TIFF: "generic-tiff",
    SlideFormat.DICOM_WSI: "dicom",
    SlideFormat.MIRAX_ZIP: "mirax",
}
"""The vendor a format names, spelled as OpenSlide's ``openslide.vendor`` spells it, so the
catalogue shows what viewers show. An OME-TIFF names no scanner vendor."""


class Container(StrEnum):
    """The outer byte container."""

    TIFF = "tiff"
    BIGTIFF = "bigtiff"
    DICOM = "dicom"
    ZIP = "zip"


@dataclass(frozen=True, slots=True)
class DetectedFormat:
    """Result of :func:`detect_format`."""

    format: SlideFormat
    container: Container
    archive: ArchiveListing | None = None
    """For zip uploads: the checked member listing."""


def sniff_container(head: bytes) -> Container | None:
    """The outer container of a file starting with ``head`` (its first :data:`SNIFF_BYTES`),
    or ``None`` when it is none we take.

    Signatures: TIFF 6.0 §2 and BigTIFF headers, the DICOM PS3.10 §7.1 preamble, the zip local
    file header (APPNOTE §4.3.7). This is the cheap first look (the upload service takes it before
    anything else reads the file); :func:`detect_format` then reads the structure.
    """
    tiff = read_tiff_header(head)
    if tiff is not None:
        return Container.BIGTIFF if tiff[1] else Container.TIFF
    if is_dicom_head(head):
        return Container.DICOM
    if head.startswith(ZIP_MAGIC):
        return Container.ZIP
    return None


def detect_format(path: SourceLike, limits: SlideLimits = DEFAULT_LIMITS) -> DetectedFormat:
    """Detect a slide's format from its bytes; raise :class:`UnsupportedFormatError` otherwise.

    TIFF structure is walked with the bounded walker first (loops, bombs and truncation raise
    their own typed errors), then tifffile's vendor flags decide the vendor. A
    :class:`~slidestream_wsi.source.SlideSource` that is not a local file must be TIFF-based
    (see :func:`is_tiff_source`): DICOM and zip inputs are read as files.
    """
    with as_source(path).open() as fh:
        head = fh.read(SNIFF_BYTES)
    if read_tiff_header(head) is not None:
        return _detect_tiff(path, limits)
    if not isinstance(path, Path):
        raise ValueError("only TIFF-based slides are detected from a non-file source")
    if is_dicom_head(head):
        sop_class = dicom_sop_class_uid(path)
        if sop_class != WSI_SOP_CLASS_UID:
            raise UnsupportedFormatError("DICOM file is not a VL Whole Slide Microscopy image")
        return DetectedFormat(SlideFormat.DICOM_WSI, Container.DICOM)
    if head.startswith(ZIP_MAGIC):
        return _detect_zip(path, limits)
    raise UnsupportedFormatError("unrecognised file content")


def is_dicom_head(head: bytes) -> bool:
    """Whether the first bytes are a DICOM PS3.10 file preamble."""
    return head[DICOM_PREAMBLE_BYTES : DICOM_PREAMBLE_BYTES + 4] == DICOM_MAGIC


def dicom_sop_class_uid(path: Path) -> str | None:
    """The SOP Class UID of a DICOM file, reading only the header."""
    import pydicom  # local: only DICOM inputs pay for the import
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPClassUID"])
    except (InvalidDicomError, OSError, ValueError, EOFError) as exc:
        raise UnsupportedFormatError("unreadable DICOM header") from exc
    value = ds.get("SOPClassUID")
    return None if value is None else str(value)


def is_tiff_source(source: SourceLike) -> bool:
    """Whether the bytes start like a TIFF or BigTIFF (the paths that take any source)."""
    with as_source(source).open() as fh:
        return read_tiff_header(fh.read(SNIFF_BYTES)) is not None


def _detect_tiff(path: SourceLike, limits: SlideLimits) -> DetectedFormat:
    with as_source(path).open() as fh:
        structure = walk_tiff(fh, limits)
    container = Container.BIGTIFF if structure.bigtiff else Container.TIFF
    # tifffile logs warnings about odd files; detection reports through exceptions instead.
    logging.getLogger("tifffile").setLevel(logging.ERROR)
    try:
        with open_tifffile(path) as tif:
            found = tiff_vendor_format(tif.pages.first)
    except Exception as exc:  # tifffile raises many types on malformed files
        raise UnsupportedFormatError("TIFF that tifffile cannot parse") from exc
    if found is None:
        raise UnsupportedFormatError("TIFF is not tiled: not a whole-slide image")
    return DetectedFormat(found, container)


def tiff_vendor_format(first: object) -> SlideFormat | None:
    """The slide format tifffile's vendor flags give a TIFF's first page (``tif.pages.first``);
    ``None`` for a plain TIFF that is not tiled (no whole-slide image). The order matters: a
    Philips or Leica file is also a plain tiled TIFF, an NDPI is not tiled at all."""
    for flag, fmt in (
        ("is_philips", SlideFormat.PHILIPS_TIFF),
        ("is_scn", SlideFormat.LEICA_SCN),
        ("is_bif", SlideFormat.VENTANA_BIF),
        ("is_ndpi", SlideFormat.HAMAMATSU_NDPI),
        ("is_ome", SlideFormat.OME_TIFF),
        ("is_svs", SlideFormat.APERIO_SVS),
        ("is_tiled", SlideFormat.GENERIC_TIFF),
    ):
        if getattr(first, flag, False):
            return fmt
    return None


def _detect_zip(path: Path, limits: SlideLimits) -> DetectedFormat:
    listing = check_zip(path, limits)
    names = [PurePosixPath(m.name) for m in listing.members]
    mrxs = [n for n in names if n.suffix.lower() == ".mrxs"]
    if mrxs:
        for index_file in mrxs:
            data_dir = index_file.parent / index_file.stem
            slidedat = (data_dir / "Slidedat.ini").as_posix().lower()
            if any(n.as_posix().lower() == slidedat for n in names):
                return DetectedFormat(SlideFormat.MIRAX_ZIP, Container.ZIP, listing)
        raise UnsupportedFormatError("MRXS archive without its data folder and Slidedat.ini")
    instances = [
        m
        for m in listing.members
        if PurePosixPath(m.name).name.lower() not in _DICOM_ZIP_IGNORED_NAMES
    ]
    if not instances:
        raise UnsupportedFormatError("empty archive")
    for member in instances:
        if not is_dicom_head(read_member_head(path, member.name, SNIFF_BYTES)):
            raise UnsupportedFormatError("archive holds a file that is not DICOM")
    return DetectedFormat(SlideFormat.DICOM_WSI_ZIP, Container.ZIP, listing)
