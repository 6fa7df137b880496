"""Reading the slide facts a partner declares (a manifest's columns, ``--meta key=value``) into
:class:`~slidestream_contracts.events.SlideFactsV1`, with an error that names the field.

The upload API refuses what this module refuses, so a mistake is told at upload time rather
than as a failed conversion hours later. Units: ``mpp_um`` is µm per pixel; a bare number or
one suffixed ``µm``/``um`` (``/px`` optional) is accepted, any other unit is refused rather than
converted (a partner who writes ``nm`` may have meant something else too).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Final

from pydantic import ValidationError

from slidestream_contracts.events import (
    MPP_UM_MAX,
    MPP_UM_MIN,
    OBJECTIVE_POWER_MAX,
    SlideFactsV1,
)

FACT_FIELDS: Final = ("mpp_um", "objective_power", "scanner")
"""The manifest columns and ``--meta`` keys read as slide facts."""
_NUMBER_WITH_UNIT = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(.*?)\s*$")
_MPP_UNITS: Final = frozenset({"", "µm", "μm", "um", "µm/px", "μm/px", "um/px", "microns"})
_POWER_UNITS: Final = frozenset({"", "x"})


FIXABLE: Final[dict[str, tuple[str, str]]] = {
    # reason → (the step that runs again, the fact that answers it)
    "missing-pixel-spacing": ("convert", "mpp_um"),
}
"""Failures a partner can fix by stating a fact (``slidestream slides fix``), once per slide."""


class SlideFactsError(ValueError):
    """A declared fact is not acceptable; ``field`` names it, the message says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def _number(field: str, raw: str, units: frozenset[str], unit_hint: str) -> float:
    match = _NUMBER_WITH_UNIT.match(raw)
    if match is None:
        raise SlideFactsError(field, f"{raw!r} is not a number {unit_hint}")
    unit = match.group(2).lower()
    if unit not in units:
        raise SlideFactsError(field, f"unit {match.group(2)!r} is not accepted: give {unit_hint}")
    value = float(match.group(1))
    if not math.isfinite(value):
        raise SlideFactsError(field, f"{raw!r} is not a finite number")
    return value


def _mpp_um(raw: str) -> float:
    value = _number("mpp_um", raw, _MPP_UNITS, "the spacing in µm per pixel, e.g. 0.25")
    if not MPP_UM_MIN <= value <= MPP_UM_MAX:
        hint = " (was it in nm?)" if value > MPP_UM_MAX else " (was it in mm?)"
        raise SlideFactsError(
            "mpp_um",
            f"{value:g} µm/px is outside {MPP_UM_MIN:g}-{MPP_UM_MAX:g} µm/px{hint}",
        )
    return value


def _objective_power(raw: str) -> float:
    value = _number("objective_power", raw, _POWER_UNITS, "the magnification, e.g. 40 or 40x")
    if not 0 < value <= OBJECTIVE_POWER_MAX:
        raise SlideFactsError(
            "objective_power", f"{value:g}x is outside 0-{OBJECTIVE_POWER_MAX:g}x"
        )
    return value


def parse_slide_facts(values: Mapping[str, object]) -> SlideFactsV1 | None:
    """The facts among ``values`` (other keys are ignored), or ``None`` when there are none."""
    given = {
        name: str(values[name]).strip()
        for name in FACT_FIELDS
        if values.get(name) is not None and str(values[name]).strip()
    }
    if not given:
        return None
    fields: dict[str, object] = {}
    if "mpp_um" in given:
        fields["mpp_um"] = _mpp_um(given["mpp_um"])
    if "objective_power" in given:
        fields["objective_power"] = _objective_power(given["objective_power"])
    if "scanner" in given:
        fields["scanner"] = given["scanner"]
    try:
        return SlideFactsV1.model_validate(fields)
    except ValidationError as error:
        first = error.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "facts"
        raise SlideFactsError(field, first["msg"]) from error


def merge_facts(first: SlideFactsV1 | None, then: SlideFactsV1 | None) -> SlideFactsV1 | None:
    """``first``'s facts, completed by ``then``'s where ``first`` states none."""
    if first is None or then is None:
        return first or then
    return SlideFactsV1(
        mpp_um=first.mpp_um if first.mpp_um is not None else then.mpp_um,
        objective_power=(
            first.objective_power if first.objective_power is not None else then.objective_power
        ),
        scanner=first.scanner or then.scanner,
    )


def spacing_disagreement(file_mpp_um: float, declared_mpp_um: float) -> float:
    """Relative difference of the file's spacing from the declared one (0.06 = 6 %)."""
    return abs(file_mpp_um - declared_mpp_um) / declared_mpp_um
