"""The QC report: a versioned, frozen pydantic model whose JSON Schema is published at
``docs/schemas/reports/qc-report.v1.json`` (:func:`write_report_schema`).

Within ``qc-report.v1`` fields may be added with defaults, never renamed or removed (the rule
the event contracts follow, docs/architecture.md).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from slidestream_wsi.qc.thresholds import QcGrade

SCHEMA_VERSION: Literal["qc-report.v1"] = "qc-report.v1"
_VERDICT_RANK: dict[QcGrade, int] = {"pass": 0, "warn": 1, "fail": 2}


def worst(verdicts: list[QcGrade]) -> QcGrade:
    return max(verdicts, key=lambda verdict: _VERDICT_RANK[verdict], default="pass")


class QcMeasureResult(BaseModel):
    """One measure of one slide, with its unit and the limit that decided its verdict."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    value: float
    unit: str
    threshold: float | None = Field(
        description="the limit crossed (warn/fail), or the nearest limit when it passed"
    )
    verdict: QcGrade
    description: str = ""


class StainVectors(BaseModel):
    """Macenko et al. (ISBI 2009) stain vectors: unit optical-density vectors over (R, G, B)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    hematoxylin: tuple[float, float, float]
    eosin: tuple[float, float, float]
    he_stain_ok: bool = Field(description="both vectors within the warn angle of Ruifrok's H&E")


class LevelUse(BaseModel):
    """A level QC decoded, and how much of it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    index: int
    purpose: Literal["analysis", "focus"]
    mpp: float | None = Field(description="micrometres per pixel, None when unknown")
    tiles_read: int
    tiles_total: int


class FocusSummary(BaseModel):
    """How the blurred share of tissue was measured, with its 95 % confidence interval."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    blurred_fraction: float = Field(description="blurred share of the tissue scored, 0–1")
    ci95_low: float = Field(description="lower end of the 95 % interval (sampling error)")
    ci95_high: float = Field(description="upper end of the 95 % interval (sampling error)")
    level: int
    mpp: float = Field(description="micrometres per pixel the patches were scored at")
    tissue_tiles: int = Field(description="tiles of the focus level holding tissue (N)")
    tiles_scored: int = Field(description="tiles scored (n = ceil(2401 / (1 + 2400 / N)))")
    patches_scored: int = Field(description="64 µm patches scored in those tiles")
    defocus_sigma_um: float = Field(description="the defocus limit judged by, sigma in µm")
    score_min: float = Field(description="the patch score that limit corresponds to")


class QcReport(BaseModel):
    """The QC verdict of one slide and every measure behind it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal["qc-report.v1"] = SCHEMA_VERSION
    slide_label: str = ""
    verdict: QcGrade
    measures: tuple[QcMeasureResult, ...]
    reasons: tuple[str, ...] = Field(description="one line per measure that warned or failed")
    bytes_read: int
    total_bytes: int
    read_fraction: float = Field(description="bytes_read / total_bytes")
    levels_read: tuple[int, ...]
    level_use: tuple[LevelUse, ...] = ()
    stain: StainVectors | None = None
    focus: FocusSummary | None = Field(None, description="how blur_fraction was measured")
    notes: tuple[str, ...] = Field((), description="what QC could not measure, and why")
    elapsed_s: float = 0.0
    """Always 0.0 now, kept for ``qc-report.v1`` (no field is removed within a version): a
    report's bytes must not depend on the run, or a second handling of the slide overwrites the
    report its event describes with other bytes. The time QC took is the qc service's."""

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)

    def with_measure(self, result: QcMeasureResult, reason: str = "") -> QcReport:
        """This report with one more measure, taken from outside the pixels (the partner's
        declared spacing against the file's); the verdict becomes the worse of the two."""
        reasons = (*self.reasons, reason) if reason and result.verdict != "pass" else self.reasons
        return self.model_copy(
            update={
                "measures": (*self.measures, result),
                "reasons": reasons,
                "verdict": worst([self.verdict, result.verdict]),
            }
        )

    def measure(self, name: str) -> QcMeasureResult:
        for result in self.measures:
            if result.name == name:
                return result
        raise KeyError(name)


def report_json_schema() -> dict[str, Any]:
    schema = QcReport.model_json_schema()
    schema["$id"] = "https://slidestream.invalid/schemas/qc-report.v1.json"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def write_report_schema(path: Path) -> None:
    """Write the report's JSON Schema (the repository keeps it at docs/schemas/)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report_json_schema(), indent=2, sort_keys=True) + "\n")
