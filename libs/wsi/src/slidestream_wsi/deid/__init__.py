"""De-identification of whole-slide images: one entry point, :func:`deidentify`.

Outputs are checked before they are returned: they must open and validate like the input (same
levels, same dimensions), hold no label or macro image, and contain none of the removed values
in their bytes. A failed check deletes the outputs and raises :class:`DeidentificationError`.

:func:`deidentify_as_patches` is the fast path for TIFF-based slides: the rewrite runs against
a :class:`~slidestream_wsi.tiff.patch.PatchOverlay` of the input (no copy of the file, and the
input may still be in an object store: it reads only the ranges it needs), the output is checked
through the patches, and the result says which bytes changed, so that a caller can build the
output elsewhere from the input's unchanged ranges. Its byte post-condition is handed to the
caller, who scans the output once for everything at once (and may write the patches into a
local copy with :func:`~slidestream_wsi.tiff.patch.apply_patches`).
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

from slidestream_wsi.archive import extract_zip
from slidestream_wsi.deid.audit import AuditRecorder, DeidAudit
from slidestream_wsi.deid.dicom import deidentify_dicom_instance, write_pseudonym_label_instance
from slidestream_wsi.deid.policy import AssociatedImagePolicy, DeidPolicy, DicomDatePolicy
from slidestream_wsi.deid.tiff import TIFF_DEID_FORMATS, _TiffDeidentifier, deidentify_tiff
from slidestream_wsi.detect import Container, DetectedFormat, SlideFormat, detect_format
from slidestream_wsi.errors import DeidentificationError, SlideError, UnsupportedFormatError
from slidestream_wsi.limits import DEFAULT_LIMITS, SlideLimits
from slidestream_wsi.scan import list_metadata, scan_bytes_for_tokens
from slidestream_wsi.source import SourceLike, as_source
from slidestream_wsi.tiff.layout import classify_ifds
from slidestream_wsi.tiff.patch import PatchedSource, PatchOverlay
from slidestream_wsi.tiff.structure import open_tifffile, walk_tiff
from slidestream_wsi.validate import SlideInfo, validate_slide

__all__ = [
    "AssociatedImagePolicy",
    "DeidAudit",
    "DeidPolicy",
    "DeidResult",
    "DicomDatePolicy",
    "PatchedDeidResult",
    "deidentify",
    "deidentify_as_patches",
    "supports_in_place",
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


@dataclass(frozen=True, slots=True)
class PatchedDeidResult:
    """A TIFF-based slide de-identified in place, and how its bytes changed."""

    result: DeidResult
    source_size_bytes: int
    patches: tuple[tuple[int, bytes], ...]
    """The output is the input with these sorted, disjoint ``(offset, bytes)`` written over it;
    bytes past the input's end were appended."""
    byte_scan_tokens: tuple[str, ...]
    """The byte post-condition, left to the caller: the output must contain none of these
    (as :class:`~slidestream_wsi.scan.ByteTokenScanner` matches them). Not scanning for them
    forfeits the guarantee :func:`deidentify` gives."""
    output: PatchedSource
    """The output, readable without having been written: the source with the patches."""


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


def supports_in_place(detected: DetectedFormat) -> bool:
    """Whether :func:`deidentify_as_patches` takes this slide (else use :func:`deidentify`)."""
    return (
        detected.container in (Container.TIFF, Container.BIGTIFF)
        and detected.format in TIFF_DEID_FORMATS
    )


def deidentify_as_patches(
    source: SourceLike, policy: DeidPolicy, limits: SlideLimits = DEFAULT_LIMITS
) -> PatchedDeidResult:
    """De-identify a TIFF-based slide without writing anything: the output is
    :attr:`PatchedDeidResult.output`, the source with the patches over it.

    The source is detected and validated, every edit is planned and recorded against an
    overlay (no copy of the file), and the output is re-opened through the patches and checked
    like :func:`deidentify` does, except for the byte scan (see
    :attr:`PatchedDeidResult.byte_scan_tokens`). The source may be any
    :class:`~slidestream_wsi.source.SlideSource`: the run reads the structure, one tile per
    level and the values it rewrites, never the whole file. Other containers (DICOM, zip) raise
    :class:`UnsupportedFormatError`: use :func:`deidentify`.
    """
    detected = detect_format(source, limits)
    if not supports_in_place(detected):
        raise UnsupportedFormatError(f"{detected.format} is not de-identified in place")
    info = validate_slide(source, limits, detected)
    audit = AuditRecorder()
    source_size = as_source(source).size_bytes
    logging.getLogger("tifffile").setLevel(logging.ERROR)
    with as_source(source).open() as base, open_tifffile(source) as tif:
        overlay = PatchOverlay(base, source_size)
        view = cast(BinaryIO, overlay)  # a binary file object in all but its nominal type
        structure = walk_tiff(view, limits)
        classified = classify_ifds(view, structure, detected.format, limits, tif)
        editor = _TiffDeidentifier(
            view, structure, detected.format, policy, audit, limits, classified
        )
        outcome = editor.run()
        patches = overlay.patches()
        output_size = overlay.size_bytes
    result = DeidResult(
        detected.format,
        (),
        audit.finish(),
        outcome.bytes_rewritten,
        output_size,
        outcome.label_replaced,
        _level_sizes(info),
    )
    output = PatchedSource(as_source(source), patches, output_size)
    tokens = _verify(result, limits, scan_bytes=False, outputs=(output,))
    return PatchedDeidResult(result, source_size, patches, tuple(tokens), output)


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
    label_dropped = False
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
            label_dropped = label_dropped or outcome.flavor.upper() == "LABEL"
            continue
        target = single_destination or destination_dir / f"{outcome.sop_instance_uid}.dcm"
        scratch.replace(target)
        outputs.append(target)
        levels.extend(_level_sizes(info))
        rewritten += outcome.bytes_rewritten
        total += outcome.output_bytes
    if not outputs:
        raise DeidentificationError("no image instance is left after removing labels")
    label_replaced = False
    if (
        label_dropped
        and single_destination is None
        and policy.associated_images is AssociatedImagePolicy.REPLACE_WITH_PSEUDONYM
    ):
        # The series keeps a LABEL instance, showing only the pseudonym (PS3.3 C.8.12.4);
        # it adds no pyramid level.
        label = destination_dir / "label.dcm"
        write_pseudonym_label_instance(outputs[0], label, policy, limits)
        outputs.append(label)
        total += label.stat().st_size
        label_replaced = True
    return DeidResult(
        SlideFormat.DICOM_WSI,
        tuple(outputs),
        audit.finish(),
        rewritten,
        total,
        label_replaced,
        tuple(levels),
    )


def _level_sizes(info: SlideInfo) -> tuple[tuple[int, int], ...]:
    return tuple((level.width_px, level.height_px) for level in info.levels)


def _verify(
    result: DeidResult,
    limits: SlideLimits,
    *,
    scan_bytes: bool = True,
    outputs: tuple[SourceLike, ...] | None = None,
) -> list[str]:
    """Post-conditions of every de-identification (raise rather than publish a leak).

    Checks ``outputs`` (by default the result's files). Returns the removed values the output's
    bytes must not hold; ``scan_bytes=False`` leaves that scan to the caller.
    """
    retained_text: list[str] = []
    output_levels: list[tuple[int, int]] = []
    outputs = result.outputs if outputs is None else outputs
    for output in outputs:
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
    if not tokens or not scan_bytes:
        return tokens
    for output in result.outputs:  # scan_bytes is only asked of results written to files
        if scan_bytes_for_tokens(output, tokens):
            raise DeidentificationError("a removed value is still present in the output bytes")
    return tokens
