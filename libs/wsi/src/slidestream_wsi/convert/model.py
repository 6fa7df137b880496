"""The public vocabulary of :func:`slidestream_wsi.convert.convert_slide`: options, identity,
per-level reports and the result. The conversion service builds these; keep the names stable."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from slidestream_wsi.pyramid.level import Compression as Compression

OutputFormat = Literal["dicom", "tiff"]
VerifyMode = Literal["sample", "full"]

DEFAULT_TILE_SIZE_PX = 256
DEFAULT_JPEG_QUALITY = 90
DEFAULT_SAMPLE_TILES_PER_LEVEL = 16
THUMBNAIL_FILE_NAME = "thumbnail.dcm"


def level_file_name(index: int) -> str:
    """The deterministic name of level ``index``'s DICOM instance (QC fetches levels by it)."""
    return f"level-{index}.dcm"


@dataclass(frozen=True)
class DicomIdentity:
    """Pseudonymous identity of the slide, from the de-identified event (never a real value)."""

    slide_id: str
    """Our UUIDv7; the entropy of every derived UID and the ContainerIdentifier fallback."""
    patient_pseudonym: str | None = None
    case_pseudonym: str | None = None
    """Written as AccessionNumber; slides of one case share a StudyInstanceUID derived from it."""
    specimen_pseudonym: str | None = None
    """Written as SpecimenIdentifier (the slide id when absent)."""
    uid_root: str = "2.25"
    """UIDs are derived from ``slide_id`` (PS3.5 §B.2 UUID-based ``2.25.<int>`` by default, or
    ``<uid_root>.<digits>``), so that a redelivery writes identical UIDs."""
    container_pseudonym: str | None = None
    """Written as ContainerIdentifier; ``slide_id`` when absent."""


@dataclass(frozen=True)
class ConversionOptions:
    outputs: frozenset[OutputFormat] = frozenset({"dicom", "tiff"})
    tile_size_px: int = DEFAULT_TILE_SIZE_PX
    """Tile size of re-encoded and generated levels (copied levels keep the source tiles)."""
    jpeg_quality: int = DEFAULT_JPEG_QUALITY
    """libjpeg quality of re-encoded and generated tiles."""
    verify: VerifyMode = "sample"
    """``sample``: the pixel proof covers ``sample_tiles_per_level`` tiles per lossless level;
    ``full``: every tile."""
    sample_tiles_per_level: int = DEFAULT_SAMPLE_TILES_PER_LEVEL
    run_dciodvfy: bool = True
    fill_pyramid_gaps: bool = True
    """Generate the dyadic levels missing between two source levels (e.g. 2x and 8x of an SVS
    with 1x, 4x, 16x)."""
    extend_pyramid: bool = True
    """Generate the dyadic levels below the smallest source level, down to one tile. With this
    and ``fill_pyramid_gaps`` off the conversion writes the source's levels only (a lossless
    repackaging, wsidicomizer's default); the DICOM thumbnail instance then repeats a level
    small enough for one (:data:`~slidestream_wsi.convert.thumbnail.THUMBNAIL_MAX_PX`) or, where
    none is, the thumbnail image the source stores (an SVS's), and is left out without either."""
    assumed_mpp_um: float | None = None
    """Pixel spacing (µm) written into DICOM when the source declares none (recorded as a
    warning). Without it such a slide raises MissingPixelSpacingError when DICOM is requested:
    DICOM WSI requires a spacing, and inventing one silently would mislead measurements."""
    reopen_check: bool = True
    """Re-open the outputs with OpenSlide, tiffslide and wsidicom and compare dimensions and a
    sample of pixels."""


@dataclass(frozen=True)
class ConvertedLevelReport:
    """One pyramid level of the output. The main fields describe the DICOM instance when DICOM
    is produced, else the TIFF level; the ``tiff_*`` fields describe the TIFF level when both are
    produced and it was encoded differently (e.g. JPEG 2000 tiles, which OpenSlide cannot read
    from a TIFF, are copied into DICOM and re-encoded as JPEG in the TIFF)."""

    index: int
    width_px: int
    height_px: int
    tile_size_px: int
    mpp_x: float | None
    mpp_y: float | None
    compression: Compression
    lossless_copy: bool
    generated: bool
    pixel_proof_sha256: str | None
    tiff_compression: Compression | None = None
    tiff_lossless_copy: bool | None = None
    source_level: int | None = None
    """The source level the tiles come from (copied or re-encoded) or were downsampled from."""


@dataclass(frozen=True)
class ConversionResult:
    dicom_files: tuple[Path, ...]
    """One instance per level (``level-<i>.dcm``) and ``thumbnail.dcm``."""
    tiff_file: Path | None
    """``slide.ome.tiff``."""
    levels: tuple[ConvertedLevelReport, ...]
    provenance: dict[str, object]
    """JSON-serialisable: source format, software versions, per-level decisions, proof hashes and
    sampled tiles, dciodvfy warnings — the same for the same input, options and software."""
    warnings: tuple[str, ...]
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds per phase (``write_s``, ``proof_s``, ``total_s``...) and per level
    (``level_<i>_s``): they change from run to run, so they stay out of the provenance."""
