"""QC thresholds: one warn and one fail limit per measure and direction, per tenant or project.

Every field is named ``<measure>_<min|max>_<warn|fail>`` and carries the measure's unit; a
measure below a ``min`` or above a ``max`` limit warns or fails. ``None`` switches a limit off.
The defaults follow HistoQC's published defaults where it has one (Janowczyk et al., JCO CCI
2019: brightness, contrast, blur, pen) and GrandQC's artefact classes otherwise (Weng et al.,
Nat Commun 2024: folds, dark spots, air bubbles, pen, out of focus), and were checked on the
generated slides of :mod:`slidestream_samples.painting`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from slidestream_wsi.errors import QcThresholdsError

QcGrade = Literal["pass", "warn", "fail"]


class QcThresholds(BaseModel):
    """The limits QC judges one slide by (frozen; build per tenant with :meth:`from_mapping`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tissue_fraction_min_warn: float | None = Field(0.01, description="fraction of slide area")
    tissue_fraction_min_fail: float | None = Field(
        0.001, description="fraction of slide area; below it the slide counts as empty"
    )
    tissue_area_mm2_min_warn: float | None = Field(1.0, description="mm²")
    tissue_area_mm2_min_fail: float | None = Field(0.05, description="mm²")
    tissue_fragments_max_warn: float | None = Field(
        60, description="count of separate tissue pieces (shattered or crushed tissue)"
    )
    tissue_fragments_max_fail: float | None = Field(None, description="count")
    blur_fraction_max_warn: float | None = Field(0.10, description="fraction of tissue")
    blur_fraction_max_fail: float | None = Field(0.30, description="fraction of tissue")
    blur_defocus_sigma_um: float = Field(
        0.6,
        ge=0.0,
        le=4.0,
        description=(
            "Gaussian defocus (sigma, µm) from which tissue counts as out of focus, scored at "
            "1 µm/px; mapped to a patch score by slidestream_wsi.qc.focus.DEFOCUS_CALIBRATION"
        ),
    )
    pen_fraction_max_warn: float | None = Field(0.002, description="fraction of slide area")
    pen_fraction_max_fail: float | None = Field(None, description="fraction of slide area")
    pen_on_tissue_fraction_max_warn: float | None = Field(
        0.01, description="fraction of tissue covered by ink"
    )
    pen_on_tissue_fraction_max_fail: float | None = Field(
        0.10, description="fraction of tissue covered by ink"
    )
    fold_fraction_max_warn: float | None = Field(0.02, description="fraction of tissue")
    fold_fraction_max_fail: float | None = Field(0.15, description="fraction of tissue")
    dark_spot_fraction_max_warn: float | None = Field(0.002, description="fraction of slide area")
    dark_spot_fraction_max_fail: float | None = Field(0.05, description="fraction of slide area")
    bubble_fraction_max_warn: float | None = Field(0.002, description="fraction of slide area")
    bubble_fraction_max_fail: float | None = Field(0.05, description="fraction of slide area")
    coverslip_edge_count_max_warn: float | None = Field(
        0.5, description="count of straight dark edges longer than a quarter of the slide"
    )
    coverslip_edge_count_max_fail: float | None = Field(None, description="count")
    tissue_brightness_min_warn: float | None = Field(
        0.35, description="mean luminance of tissue, 0 (black) to 1 (white)"
    )
    tissue_brightness_min_fail: float | None = Field(0.20, description="luminance 0–1")
    tissue_brightness_max_warn: float | None = Field(0.85, description="luminance 0–1")
    tissue_brightness_max_fail: float | None = Field(0.93, description="luminance 0–1")
    tissue_contrast_min_warn: float | None = Field(
        0.03, description="RMS contrast: standard deviation of tissue luminance, 0–1"
    )
    tissue_contrast_min_fail: float | None = Field(None, description="RMS contrast 0–1")
    tissue_saturation_min_warn: float | None = Field(
        0.10, description="mean HSV saturation of tissue, 0–1 (washed-out stain)"
    )
    tissue_saturation_min_fail: float | None = Field(0.05, description="saturation 0–1")
    tissue_clipped_fraction_max_warn: float | None = Field(
        0.05, description="fraction of tissue pixels with a channel at 255 (over-exposure)"
    )
    tissue_clipped_fraction_max_fail: float | None = Field(0.30, description="fraction of tissue")
    background_brightness_min_warn: float | None = Field(
        0.75, description="mean luminance of the glass, 0–1 (under-exposure)"
    )
    background_brightness_min_fail: float | None = Field(0.55, description="luminance 0–1")
    background_unevenness_max_warn: float | None = Field(
        0.08, description="spread (95th − 5th percentile) of glass luminance over a grid, 0–1"
    )
    background_unevenness_max_fail: float | None = Field(0.20, description="luminance 0–1")
    hematoxylin_angle_deg_max_warn: float | None = Field(
        20.0, description="degrees between the Macenko haematoxylin vector and Ruifrok's"
    )
    hematoxylin_angle_deg_max_fail: float | None = Field(35.0, description="degrees")
    eosin_angle_deg_max_warn: float | None = Field(
        20.0, description="degrees between the Macenko eosin vector and Ruifrok's"
    )
    eosin_angle_deg_max_fail: float | None = Field(35.0, description="degrees")
    expect_he_stain: bool = Field(
        True, description="judge the stain vectors against H&E (off for IHC or special stains)"
    )

    @model_validator(mode="after")
    def _warn_before_fail(self) -> QcThresholds:
        values = self.model_dump()
        for name, warn in values.items():
            if not name.endswith("_warn") or warn is None:
                continue
            fail = values.get(name.removesuffix("_warn") + "_fail")
            if fail is None:
                continue
            if name.endswith("_max_warn") and warn > fail:
                raise ValueError(f"{name} is above its fail limit")
            if name.endswith("_min_warn") and warn < fail:
                raise ValueError(f"{name} is below its fail limit")
        return self

    @classmethod
    def from_mapping(cls, values: Mapping[str, object]) -> QcThresholds:
        """Thresholds from a tenant's or project's config (defaults for what it leaves out)."""
        try:
            return cls.model_validate(dict(values))
        except ValidationError as exc:
            names = ", ".join(
                ".".join(str(part) for part in error["loc"]) for error in exc.errors()
            )
            raise QcThresholdsError(f"invalid QC thresholds: {names or 'model'}") from exc

    def limits_of(self, measure: str) -> MeasureLimits:
        values = self.model_dump()
        return MeasureLimits(
            values.get(f"{measure}_min_warn"),
            values.get(f"{measure}_min_fail"),
            values.get(f"{measure}_max_warn"),
            values.get(f"{measure}_max_fail"),
        )


@dataclass(frozen=True, slots=True)
class MeasureLimits:
    min_warn: float | None
    min_fail: float | None
    max_warn: float | None
    max_fail: float | None

    def judge(self, value: float) -> tuple[QcGrade, float | None]:
        """The verdict and the limit that decided it (the nearest limit when it passes)."""
        if self.max_fail is not None and value > self.max_fail:
            return "fail", self.max_fail
        if self.min_fail is not None and value < self.min_fail:
            return "fail", self.min_fail
        if self.max_warn is not None and value > self.max_warn:
            return "warn", self.max_warn
        if self.min_warn is not None and value < self.min_warn:
            return "warn", self.min_warn
        candidates = [
            limit
            for limit in (self.max_warn, self.min_warn, self.max_fail, self.min_fail)
            if limit is not None
        ]
        nearest = min(candidates, key=lambda limit: abs(limit - value), default=None)
        return "pass", nearest
