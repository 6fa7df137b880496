"""Which models run on a slide: a tenant's routes against the slide's facts and QC verdict.

A route names a model and narrows it to a tenant, and optionally a project and a stain; its
``min_qc`` is the worst verdict it accepts (``pass``: only passed slides, ``warn``: passed or
warned). A failed slide is never analysed, whatever a route says.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class MinQc(StrEnum):
    """The weakest QC verdict a route accepts (a failed slide is never analysed)."""

    PASS = "pass"  # noqa: S105 - a verdict, not a password
    WARN = "warn"

    def verdicts(self) -> frozenset[str]:
        return frozenset({"pass"}) if self is MinQc.PASS else frozenset({"pass", "warn"})


@dataclass(frozen=True, slots=True)
class RouteRule:
    """One stored route (the ``inference_routes`` row, as the workflow reads it)."""

    model_name: str
    tenant: str
    project: str | None = None
    stain: str | None = None
    min_qc: MinQc = MinQc.PASS
    version: str | None = None


@dataclass(frozen=True, slots=True)
class RouteMatch:
    """A model to run on the slide: a pinned ``version``, or ``None`` for the latest ready."""

    model_name: str
    version: str | None = None


def verdict_allows(min_qc: MinQc | str, verdict: str) -> bool:
    """Whether a slide with QC ``verdict`` may run under ``min_qc`` (``fail`` never may)."""
    return verdict in MinQc(min_qc).verdicts()


def same_stain(wanted: str, stain: str | None) -> bool:
    """Stains as people type them: ``H&E``, ``h&e`` and `` H&E `` are one stain."""
    return stain is not None and wanted.strip().casefold() == stain.strip().casefold()


def route_matches(
    rule: RouteRule, *, tenant: str, stain: str | None, project: str | None, verdict: str
) -> bool:
    """A route applies to its tenant's slides of its project and stain (``None``: any) whose
    verdict its ``min_qc`` accepts; a slide of unknown stain matches only stain-free routes."""
    return (
        rule.tenant == tenant
        and (rule.project is None or rule.project == project)
        and (rule.stain is None or same_stain(rule.stain, stain))
        and verdict_allows(rule.min_qc, verdict)
    )


def matching_routes(
    rules: list[RouteRule], *, tenant: str, stain: str | None, project: str | None, verdict: str
) -> list[RouteMatch]:
    """The models to run, each once (by name, in name order)."""
    chosen: dict[str, RouteMatch] = {}
    for rule in rules:
        if route_matches(rule, tenant=tenant, stain=stain, project=project, verdict=verdict):
            chosen.setdefault(rule.model_name, RouteMatch(rule.model_name, rule.version))
    return [chosen[name] for name in sorted(chosen)]
