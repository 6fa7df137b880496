"""What a conversion reports: one :class:`ConvertedLevelReport` per level, and the provenance
record (source, options, per-level decisions and proofs, checks, software) that the service
stores beside the outputs.

The record is a function of the input, the options and the software only — no timing, path or
clock in it — like the outputs: it is written under a deterministic key, and a second handling
of the same slide (a redelivery, a consumer evicted mid-conversion that finishes anyway) must
write the very bytes the announced event describes. Timings are reported beside it
(:func:`timings_report`, ``ConversionResult.timings``)."""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import dataclass
from importlib import metadata as importlib_metadata

from slidestream_wsi.convert.copy_pass import LevelOutcome
from slidestream_wsi.convert.gate import Proofs
from slidestream_wsi.convert.model import ConversionOptions, ConvertedLevelReport
from slidestream_wsi.convert.plan import Encoding, LevelPlan
from slidestream_wsi.pyramid import SourceSlide

_VERSIONED_PACKAGES = ("slidestream-wsi", "tifffile", "imagecodecs", "pydicom", "numpy")


@dataclass(frozen=True)
class Checks:
    """What the gate found beyond the proofs."""

    dciodvfy_warnings: dict[str, list[str]]
    reopen: dict[str, object]


def level_report(
    outcome: LevelOutcome,
    proofs: Proofs,
    mpp: tuple[float, float] | None,
    plans: list[LevelPlan],
) -> ConvertedLevelReport:
    plan = outcome.plan
    main = plan.dicom or plan.tiff
    assert main is not None
    tiff_differs = plan.dicom is not None and plan.tiff is not None and plan.tiff != plan.dicom
    return ConvertedLevelReport(
        index=plan.index,
        width_px=plan.width,
        height_px=plan.height,
        tile_size_px=main.tile_width,
        mpp_x=mpp[0] * plan.downsample if mpp else None,
        mpp_y=mpp[1] * plan.downsample if mpp else None,
        compression=main.compression,
        lossless_copy=main.mode == "copy",
        generated=plan.generated,
        pixel_proof_sha256=proofs.get(plan.index, {}).get("source")
        if main.mode == "copy"
        else None,
        tiff_compression=plan.tiff.compression if tiff_differs and plan.tiff else None,
        tiff_lossless_copy=(plan.tiff.mode == "copy") if tiff_differs and plan.tiff else None,
        source_level=_source_level(plan, plans),
    )


def _source_level(plan: LevelPlan, plans: list[LevelPlan]) -> int | None:
    """The source level whose tiles the level copies, re-encodes or was downsampled from."""
    while plan.source is None and plan.parent is not None:
        plan = plans[plan.parent]
    return plan.source.index if plan.source is not None else None


def provenance(
    slide: SourceSlide,
    options: ConversionOptions,
    levels: list[tuple[LevelOutcome, ConvertedLevelReport]],
    proofs: Proofs,
    checks: Checks,
    warnings: list[str],
) -> dict[str, object]:
    """The provenance record, checked to be JSON here rather than in the service."""
    record: dict[str, object] = {
        "source": _source_record(slide),
        "options": _options_record(options),
        "levels": [_level_record(outcome, report, proofs) for outcome, report in levels],
        "dciodvfy_warnings": checks.dciodvfy_warnings,
        "reopen": checks.reopen,
        "software": _software_versions(),
        "warnings": list(warnings),
    }
    json.dumps(record)  # fail here, not in the service, if something is not JSON
    return record


def _level_record(
    outcome: LevelOutcome, report: ConvertedLevelReport, proofs: Proofs
) -> dict[str, object]:
    plan = outcome.plan
    return {
        "index": plan.index,
        "size_px": [plan.width, plan.height],
        "source_level": report.source_level,
        "generated_from_level": plan.parent,
        "dicom": _encoding_record(plan.dicom),
        "tiff": _encoding_record(plan.tiff),
        "proof": {
            "sampled_tiles": outcome.sampled,
            "sha256": proofs.get(plan.index),
        }
        if outcome.source_hash is not None
        else None,
    }


def timings_report(timings: dict[str, float], outcomes: list[LevelOutcome]) -> dict[str, float]:
    """The conversion's timings (seconds, rounded to ms), each level's as ``level_<i>_s``."""
    report = {name: round(seconds, 3) for name, seconds in timings.items()}
    for outcome in outcomes:
        report[f"level_{outcome.plan.index}_s"] = round(outcome.seconds, 3)
    return report


def _source_record(slide: SourceSlide) -> dict[str, object]:
    return {
        "format": slide.format,
        "levels": [
            {
                "index": level.index,
                "size_px": [level.width, level.height],
                "tile_px": [level.tile_width, level.tile_height],
                "tiled": level.tiled,
                "compression": str(level.coding.compression),
            }
            for level in slide.levels
        ],
        "mpp": list(slide.mpp) if slide.mpp else None,
        "objective_power": slide.objective_power,
        "icc_profile_sha256": hashlib.sha256(slide.icc_profile).hexdigest()
        if slide.icc_profile
        else None,
    }


def _options_record(options: ConversionOptions) -> dict[str, object]:
    return {
        "outputs": sorted(options.outputs),
        "tile_size_px": options.tile_size_px,
        "jpeg_quality": options.jpeg_quality,
        "verify": options.verify,
        "sample_tiles_per_level": options.sample_tiles_per_level,
        "fill_pyramid_gaps": options.fill_pyramid_gaps,
        "extend_pyramid": options.extend_pyramid,
    }


def _encoding_record(encoding: Encoding | None) -> dict[str, object] | None:
    if encoding is None:
        return None
    return {
        "mode": encoding.mode,
        "compression": encoding.compression,
        "tile_px": [encoding.tile_width, encoding.tile_height],
        "photometric": encoding.dicom_photometric,
        "reason": encoding.reason,
    }


def _software_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in _VERSIONED_PACKAGES:
        try:
            versions[package] = importlib_metadata.version(package)
        except importlib_metadata.PackageNotFoundError:
            versions[package] = "unknown"
    return versions
