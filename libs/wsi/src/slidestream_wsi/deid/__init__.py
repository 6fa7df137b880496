"""De-identification of whole-slide images: one entry point, :func:`deidentify`.

Outputs are checked before they are returned: they must open and validate like the input (same
levels, same dimensions), hold no label or macro image, and contain none of the removed values
in their bytes. A failed check deletes the outputs and raises :class:`DeidentificationError`.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from slidestream_wsi.archive import extract_zip
from slidestream_wsi.deid.audit import AuditRecorder, DeidAudit
from slidestream_wsi.deid.dicom import deidentify_dicom_instance
from slidestream_wsi.deid.policy import AssociatedImagePolicy, DeidPolicy, DicomDatePolicy
from slidestream_wsi.deid.tiff import TIFF_DEID_FORMATS, deidentify_tiff
from slidestream_wsi.detect import Container, DetectedFormat, SlideFormat, detect_format
from slidestream_wsi.errors import DeidentificationError, SlideError, UnsupportedFormatError
from slidestream_wsi.limits import DEFAULT_LIMITS, SlideLimits
from slidestream_wsi.scan import list_metadata, scan_bytes_for_tokens
from slidestream_wsi.validate import SlideInfo, validate_slide

__all__ = [
    "AssociatedImagePolicy",
    "DeidAudit",
    "DeidPolicy",
    "DeidResult",
    "DicomDatePolicy",
    "deidentify",
]


@dataclass(frozen=True, slots=True)
class DeidResult:
    format: SlideFormat
    outputs: tuple[Path, ...]
    """The de-identified file, or the instances of a DICOM series (LABEL/OVERVIEW dropped)."""
    audit: DeidAudit
    bytes_rewritten: int
    """Bytes written by patching (TIFF) or as new headers (DICOM), not counting copied bytes."""
    output_bytes: int
    label_replaced: bool
    levels: tuple[tuple[int, int], ...]
    """(width, height) of every pyramid level of the output, in pixels."""

    @property
    def rewritten_fraction(self) -> float:
        return self.bytes_rewritten / self.output_bytes if self.output_bytes else 0.0


def deidentify(
    source: Path,
    destination: Path,
    policy: DeidPolicy,
    limits: SlideLimits = DEFAULT_LIMITS,
) -> DeidResult:
    """De-identify ``source`` into ``destination`` (a file; a folder for a zipped DICOM series).

    Raises a :class:`SlideError` subclass for inputs that are not slides, are unsafe or are
    broken, :class:`UnsupportedFormatError` for formats not de-identified yet (Leica SCN,
    Ventana BIF, MRXS), and :class:`DeidentificationError` if the output fails its checks.
    """
    detected = detect_format(source, limits)
    audit = AuditRecorder()
    if detected.container in (Container.TIFF, Container.BIGTIFF):
        result = _deidentify_tiff_file(source, destination, detected, policy, audit, limits)
    elif detected.container is Container.DICOM:
        destination.parent.mkdir(parents=True, exist_ok=True)
        result = _deidentify_dicom_files(
            [source], destination.parent, policy, audit, limits, single_destination=destination
        )
    elif detected.format is SlideFormat.DICOM_WSI_ZIP:
        destination.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=destination.parent) as scratch:
            members = extract_zip(source, Path(scratch), limits)
            result = _deidentify_dicom_files(members, destination, policy, audit, limits)
    else:
        raise UnsupportedFormatError(f"de-identification of {detected.format} is not supported")
    try:
        _verify(result, limits)
    except BaseException:
        for output in result.outputs:
            output.unlink(missing_ok=True)
        raise
    return result


def _deidentify_tiff_file(
    source: Path,
    destination: Path,
    detected: DetectedFormat,
    policy: DeidPolicy,
    audit: AuditRecorder,
    limits: SlideLimits,
) -> DeidResult:
    if detected.format not in TIFF_DEID_FORMATS:
        raise UnsupportedFormatError(f"de-identification of {detected.format} is not supported")
    info = validate_slide(source, limits, detected)
    outcome = deidentify_tiff(source, destination, detected.format, policy, audit, limits)
    return DeidResult(
        detected.format,
        (destination,),
        audit.finish(),
        outcome.bytes_rewritten,
        destination.stat().st_size,
        outcome.label_replaced,
        _level_sizes(info),
    )


def _deidentify_dicom_files(
    sources: list[Path],
    destination_dir: Path,
    policy: DeidPolicy,
    audit: AuditRecorder,
    limits: SlideLimits,
    single_destination: Path | None = None,
) -> DeidResult:
    outputs: list[Path] = []
    levels: list[tuple[int, int]] = []
    rewritten = 0
    total = 0
    for source in sorted(sources, key=lambda p: p.as_posix()):
        if source.name.lower() == "dicomdir":
            audit.removed_image("dicom.dicomdir")
            continue
        detected = detect_format(source, limits)
        if detected.format is not SlideFormat.DICOM_WSI:
            raise UnsupportedFormatError("a member of the series is not a DICOM WSI instance")
        info = validate_slide(source, limits, detected)
        scratch = destination_dir / f".{source.name}.partial"
        outcome = deidentify_dicom_instance(source, scratch, policy, audit, limits)
        if not outcome.written:
            scratch.unlink(missing_ok=True)
            continue
        target = single_destination or destination_dir / f"{outcome.sop_instance_uid}.dcm"
        scratch.replace(target)
        outputs.append(target)
        levels.extend(_level_sizes(info))
        rewritten += outcome.bytes_rewritten
        total += outcome.output_bytes
    if not outputs:
        raise DeidentificationError("no image instance is left after removing labels")
    return DeidResult(
        SlideFormat.DICOM_WSI,
        tuple(outputs),
        audit.finish(),
        rewritten,
        total,
        False,
        tuple(levels),
    )


def _level_sizes(info: SlideInfo) -> tuple[tuple[int, int], ...]:
    return tuple((level.width_px, level.height_px) for level in info.levels)


def _verify(result: DeidResult, limits: SlideLimits) -> None:
    """Post-conditions of every de-identification (raise rather than publish a leak)."""
    retained_text: list[str] = []
    output_levels: list[tuple[int, int]] = []
    for output in result.outputs:
        try:
            info = validate_slide(output, limits)
        except SlideError as exc:
            raise DeidentificationError("the de-identified output does not validate") from exc
        output_levels.extend(_level_sizes(info))
        inventory = list_metadata(output, limits)
        remaining = set(inventory.associated_images) - {"thumbnail"}
        allowed = {"label"} if result.label_replaced else set()
        if remaining - allowed:
            raise DeidentificationError("an associated image survived de-identification")
        retained_text.extend(s.value.lower() for s in inventory.strings)
    if sorted(output_levels) != sorted(result.levels):
        raise DeidentificationError("the output's levels differ from the input's")
    retained = "\n".join(retained_text)
    tokens = [t for t in result.audit.scan_tokens() if t.lower() not in retained]
    if not tokens:
        return
    for output in result.outputs:
        if scan_bytes_for_tokens(output, tokens):
            raise DeidentificationError("a removed value is still present in the output bytes")
