"""The slide work behind a Protocol: de-identify, list an output's metadata, byte-scan it, and
describe it (vendor, scanner model, spacing, objective power).

The implementation is :mod:`slidestream_wsi` (bounded, typed errors). The description is the
slide reader's (:func:`slidestream_wsi.pyramid.describe_slide`, the one spacing rule that
conversion, QC and inference use), read from the *output*, so the event describes what
consumers will open.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from slidestream_wsi.deid import (
    DeidPolicy,
    DeidResult,
    PatchedDeidResult,
    deidentify,
    deidentify_as_patches,
)
from slidestream_wsi.detect import DetectedFormat, detect_format, is_tiff_source
from slidestream_wsi.errors import SlideError
from slidestream_wsi.limits import DEFAULT_LIMITS, SlideLimits
from slidestream_wsi.pyramid.describe import describe_slide
from slidestream_wsi.scan import (
    MetadataInventory,
    TokenHit,
    list_metadata,
    scan_bytes_for_tokens,
)
from slidestream_wsi.source import SlideSource, SourceLike
from slidestream_wsi.tiff.patch import apply_patches

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SlideProperties:
    vendor: str | None = None
    mpp_x: float | None = None
    mpp_y: float | None = None
    objective_power: float | None = None
    scanner_model: str | None = None


class SlideTools(Protocol):
    def detect(self, path: Path) -> DetectedFormat: ...

    def is_tiff(self, source: SlideSource) -> bool: ...

    def deidentify(self, source: Path, destination: Path, policy: DeidPolicy) -> DeidResult: ...

    def deidentify_as_patches(
        self, source: SlideSource, policy: DeidPolicy
    ) -> PatchedDeidResult: ...

    def inventory(self, path: SourceLike) -> MetadataInventory: ...

    def scan(self, path: Path, tokens: Sequence[str]) -> list[TokenHit]: ...

    def properties(self, path: Path) -> SlideProperties: ...

    def properties_of_structure(
        self,
        patched: PatchedDeidResult,
        blocks: Iterable[tuple[int, bytes]],
        scratch_file: Path,
    ) -> SlideProperties: ...


class WsiSlideTools:
    def __init__(self, limits: SlideLimits = DEFAULT_LIMITS) -> None:
        self._limits = limits

    def detect(self, path: Path) -> DetectedFormat:
        return detect_format(path, self._limits)

    def deidentify(self, source: Path, destination: Path, policy: DeidPolicy) -> DeidResult:
        return deidentify(source, destination, policy, self._limits)

    def is_tiff(self, source: SlideSource) -> bool:
        return is_tiff_source(source)

    def deidentify_as_patches(self, source: SlideSource, policy: DeidPolicy) -> PatchedDeidResult:
        return deidentify_as_patches(source, policy, self._limits)

    def inventory(self, path: SourceLike) -> MetadataInventory:
        return list_metadata(path, self._limits)

    def scan(self, path: Path, tokens: Sequence[str]) -> list[TokenHit]:
        return scan_bytes_for_tokens(path, tokens) if tokens else []

    def properties(self, path: Path) -> SlideProperties:
        """The reader's description of a (validated) output; empty if it cannot say."""
        return self._describe(path)

    def properties_of_structure(
        self,
        patched: PatchedDeidResult,
        blocks: Iterable[tuple[int, bytes]],
        scratch_file: Path,
    ) -> SlideProperties:
        """The description of an output that was never written whole.

        ``blocks`` are the ``(offset, bytes)`` ranges of the input that de-identification read:
        the TIFF header, every directory and tag value, one tile per level. They are laid out at
        their offsets in a sparse file of the output's size, with the patches over them, and the
        reader describes that: a description reads directories and tag values, never tiles
        (the tests compare both ways for every layout de-identified in place).
        """
        with scratch_file.open("wb") as out:
            out.truncate(patched.output.size_bytes)  # a sparse file: holes cost no disk
        try:
            apply_patches(scratch_file, list(blocks))
            apply_patches(scratch_file, patched.patches)
            return self._describe(scratch_file)
        finally:
            scratch_file.unlink(missing_ok=True)

    def _describe(self, path: Path) -> SlideProperties:
        try:
            described = describe_slide(path, self._limits)
        except SlideError as error:
            # The output validated already; a description that cannot be read only leaves the
            # optional fields empty.
            logger.info("the output cannot be described", extra={"error": type(error).__name__})
            return SlideProperties()
        mpp = described.mpp
        return SlideProperties(
            vendor=described.vendor,
            mpp_x=mpp[0] if mpp else None,
            mpp_y=mpp[1] if mpp else None,
            objective_power=described.objective_power,
            scanner_model=described.scanner_model,
        )
