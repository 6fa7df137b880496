"""The slide work behind a Protocol: convert local files to DICOM WSI and/or pyramidal TIFF.

The implementation is :mod:`slidestream_wsi.convert` (streaming, lossless where the source
allows, pixel proof, conformance gate). Tests may substitute a slower or failing converter.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from slidestream_wsi.convert import (
    ConversionOptions,
    ConversionResult,
    DicomIdentity,
    convert_slide,
)

Progress = Callable[[int, int], None]


class SlideConverter(Protocol):
    def convert(
        self,
        sources: Sequence[Path],
        out_dir: Path,
        identity: DicomIdentity,
        options: ConversionOptions,
        progress: Progress | None = None,
    ) -> ConversionResult: ...


class WsiConverter:
    def convert(
        self,
        sources: Sequence[Path],
        out_dir: Path,
        identity: DicomIdentity,
        options: ConversionOptions,
        progress: Progress | None = None,
    ) -> ConversionResult:
        return convert_slide(sources, out_dir, identity, options, progress)
