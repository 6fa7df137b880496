"""The convert service's settings (one frozen class)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from slidestream_convert.domain.outputs import OutputName
from slidestream_platform.settings import ServiceSettings


class ConvertSettings(ServiceSettings):
    service_name: str = "convert"
    http_port: int = 8093

    deidentified_bucket: str = "deidentified"
    converted_bucket: str = "converted"

    default_outputs: tuple[OutputName, ...] = ("dicom", "tiff")
    """What a slide is converted to unless its tenant says otherwise."""
    tenant_outputs: dict[str, tuple[OutputName, ...]] = Field(default_factory=dict)
    """Per-tenant override, e.g. ``TENANT_OUTPUTS='{"lab-a": ["dicom"]}'``."""

    tile_size_px: int = Field(default=256, ge=64, le=4096)
    """Tile size of re-encoded and generated levels (copied levels keep the source's tiles)."""
    jpeg_quality: int = Field(default=90, ge=1, le=100)
    """JPEG quality when a level has to be re-encoded (exactly once)."""
    verify: Literal["sample", "full"] = "sample"
    """Pixel proof of copied levels: a sample of tiles, or every tile."""
    sample_tiles_per_level: int = Field(default=16, ge=1)
    assumed_mpp_um: float | None = Field(default=None, gt=0)
    """Pixel spacing to declare when a slide states none. DICOM WSI requires one, so without
    this setting such a slide is dead-lettered (``missing-pixel-spacing``) rather than given an
    invented resolution."""
    fill_pyramid_gaps: bool = True
    """Generate the dyadic levels missing between two source levels (2x and 8x of an SVS with
    1x, 4x and 16x)."""
    extend_pyramid: bool = True
    """Generate the levels below the smallest source level, down to one tile. With both off a
    slide is repackaged with its own levels only (every tile copied, nothing decoded but the
    proof's sample)."""
    run_dciodvfy: bool = True
    """The DICOM conformance gate (dicom3tools); only switch it off where the tool is absent."""

    membership_poll_s: float = Field(default=5.0, gt=0)
    """While one slide converts, the consumer's partitions are paused and polled this often, so
    a conversion longer than ``KAFKA_MAX_POLL_INTERVAL_S`` keeps the group stable."""
    work_dir: Path | None = None
    """Scratch space for the source and the outputs (about three slide sizes); the system temp
    directory when unset."""
