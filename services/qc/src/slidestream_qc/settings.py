"""The qc service's settings (one frozen class)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from slidestream_platform.settings import ServiceSettings
from slidestream_wsi.qc.thresholds import QcThresholds


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

    @model_validator(mode="after")
    def _thresholds_are_known(self) -> QcSettings:
        # A misspelt threshold name must stop the service at start, not dead-letter slides.
        self.thresholds_for("")
        for tenant in self.tenant_thresholds:
            self.thresholds_for(tenant)
        return self

    def thresholds_for(self, tenant: str) -> QcThresholds:
        """The platform defaults, then ``default_thresholds``, then the tenant's own values."""
        merged: dict[str, object] = {
            **self.default_thresholds,
            **self.tenant_thresholds.get(tenant, {}),
        }
        return QcThresholds.from_mapping(merged)
