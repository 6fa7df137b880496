"""The qc service's settings (one frozen class)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from slidestream_platform.settings import ServiceSettings


class QcSettings(ServiceSettings):
    service_name: str = "qc"
    http_port: int = 8094

    converted_bucket: str = "converted"
    derived_bucket: str = "derived"

    default_thresholds: dict[str, float | None] = Field(default_factory=dict)
    """Overrides of the library's documented defaults (``slidestream_wsi.qc.QcThresholds``) for
    every tenant, e.g. ``DEFAULT_THRESHOLDS={"blur_fraction_max_fail": 0.5}``."""
    tenant_thresholds: dict[str, dict[str, float | None]] = Field(default_factory=dict)
    """Per-tenant (or per-project tenant) overrides on top of ``default_thresholds``."""

    work_dir: Path | None = None
    """Scratch space for the level files QC reads; the system temp directory when unset."""
