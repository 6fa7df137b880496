"""The partner's declared spacing against the file's (issue 18): a QC warning, not a failure.

Conversion writes the file's own spacing whenever it states one, so the two can disagree only
then; when the file stated none, the declared spacing is the one written and there is nothing
to compare (``SlideConvertedV1.spacing_declared``).
"""

from __future__ import annotations

from slidestream_contracts.events import SlideConvertedV1
from slidestream_contracts.slide_facts import spacing_disagreement
from slidestream_wsi.qc.report import QcMeasureResult

DECLARED_SPACING_MEASURE = "declared_spacing_difference"
SPACING_DISAGREEMENT_WARN_PCT = 5.0
"""Beyond this the file and the partner disagree on the slide's scale: a 40x slide declared as
20x, or a rounded 0.25 for 0.2627 µm/px (5 % is the spread of scanners' stated 40x spacings)."""


def declared_spacing_check(event: SlideConvertedV1) -> tuple[QcMeasureResult, str] | None:
    """The measure, and the reason a warning gives; ``None`` when there is nothing to compare."""
    declared = event.declared.mpp_um if event.declared is not None else None
    if declared is None or event.spacing_declared or not event.levels:
        return None
    level0 = min(event.levels, key=lambda level: level.index)
    stated = [mpp for mpp in (level0.mpp_x, level0.mpp_y) if mpp is not None]
    if not stated:
        return None
    file_mpp_um = sum(stated) / len(stated)
    percent = 100.0 * spacing_disagreement(file_mpp_um, declared)
    verdict = "warn" if percent > SPACING_DISAGREEMENT_WARN_PCT else "pass"
    result = QcMeasureResult(
        name=DECLARED_SPACING_MEASURE,
        value=round(percent, 2),
        unit="%",
        threshold=SPACING_DISAGREEMENT_WARN_PCT,
        verdict=verdict,
        description="the file's level-0 spacing against the partner's declared mpp_um",
    )
    reason = (
        f"declared spacing {declared:g} µm/px differs from the file's {file_mpp_um:.4g} µm/px "
        f"by {percent:.1f} % (> {SPACING_DISAGREEMENT_WARN_PCT:g} %); the file's is used"
    )
    return result, reason
