"""The slide work behind a Protocol: de-identify, list an output's metadata, byte-scan it, and
read the properties viewers will see (vendor, resolution, magnification).

The implementation is :mod:`slidestream_wsi` (bounded, typed errors) plus OpenSlide for the
properties, read from the *output*, so the event describes what consumers will open.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from slidestream_wsi.deid import (
    DeidPolicy,
    DeidResult,
    PatchedDeidResult,
    deidentify,
    deidentify_in_place,
)
from slidestream_wsi.detect import DetectedFormat, detect_format
from slidestream_wsi.limits import DEFAULT_LIMITS, SlideLimits
from slidestream_wsi.scan import (
    MetadataInventory,
    ScannedFile,
    TokenHit,
    list_metadata,
    scan_and_hash_file,
    scan_bytes_for_tokens,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SlideProperties:
    vendor: str | None = None
    mpp_x: float | None = None
    mpp_y: float | None = None
    objective_power: float | None = None


class SlideTools(Protocol):
    def detect(self, path: Path) -> DetectedFormat: ...

    def deidentify(self, source: Path, destination: Path, policy: DeidPolicy) -> DeidResult: ...

    def deidentify_in_place(self, path: Path, policy: DeidPolicy) -> PatchedDeidResult: ...

    def inventory(self, path: Path) -> MetadataInventory: ...

    def scan(self, path: Path, tokens: Sequence[str]) -> list[TokenHit]: ...

    def scan_and_hash(self, path: Path, tokens: Sequence[str]) -> ScannedFile: ...

    def properties(self, path: Path) -> SlideProperties: ...


def _positive(value: str | None) -> float | None:
    try:
        number = float(value) if value is not None else None
    except ValueError:
        return None
    return number if number is not None and number > 0 else None


class WsiSlideTools:
    def __init__(self, limits: SlideLimits = DEFAULT_LIMITS) -> None:
        self._limits = limits

    def detect(self, path: Path) -> DetectedFormat:
        return detect_format(path, self._limits)

    def deidentify(self, source: Path, destination: Path, policy: DeidPolicy) -> DeidResult:
        return deidentify(source, destination, policy, self._limits)

    def deidentify_in_place(self, path: Path, policy: DeidPolicy) -> PatchedDeidResult:
        return deidentify_in_place(path, policy, self._limits)

    def inventory(self, path: Path) -> MetadataInventory:
        return list_metadata(path, self._limits)

    def scan(self, path: Path, tokens: Sequence[str]) -> list[TokenHit]:
        return scan_bytes_for_tokens(path, tokens) if tokens else []

    def scan_and_hash(self, path: Path, tokens: Sequence[str]) -> ScannedFile:
        return scan_and_hash_file(path, tokens)

    def properties(self, path: Path) -> SlideProperties:
        """OpenSlide's standard properties of a (validated) output; empty if it cannot say."""
        import openslide  # local: the C library loads only in the worker that needs it

        try:
            with openslide.OpenSlide(path) as slide:
                props = slide.properties
                return SlideProperties(
                    vendor=props.get(openslide.PROPERTY_NAME_VENDOR) or None,
                    mpp_x=_positive(props.get(openslide.PROPERTY_NAME_MPP_X)),
                    mpp_y=_positive(props.get(openslide.PROPERTY_NAME_MPP_Y)),
                    objective_power=_positive(props.get(openslide.PROPERTY_NAME_OBJECTIVE_POWER)),
                )
        except openslide.OpenSlideError as error:
            # The output validated with slidestream_wsi; OpenSlide not knowing the layout
            # (e.g. some OME-TIFFs) only leaves the optional fields empty.
            logger.info(
                "openslide cannot describe the output", extra={"error": type(error).__name__}
            )
            return SlideProperties()
