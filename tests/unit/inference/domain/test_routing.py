"""Which routes apply to a slide: tenant, project, stain and the QC verdict its min_qc accepts."""

from __future__ import annotations

import pytest

from slidestream_inference.domain.routing import (
    MinQc,
    RouteMatch,
    RouteRule,
    matching_routes,
    verdict_allows,
)


@pytest.mark.parametrize(
    ("min_qc", "verdict", "runs"),
    [
        ("pass", "pass", True),
        ("pass", "warn", False),
        ("pass", "fail", False),
        ("warn", "pass", True),
        ("warn", "warn", True),
        ("warn", "fail", False),
    ],
)
def test_min_qc_is_the_worst_verdict_a_route_accepts_and_fail_never_runs(
    min_qc: str, verdict: str, runs: bool
) -> None:
    assert verdict_allows(MinQc(min_qc), verdict) is runs


RULES = [
    RouteRule("any-he", "lab", stain="H&E", min_qc=MinQc.WARN),
    RouteRule("trial-only", "lab", project="trial-7", version="3"),
    RouteRule("everything", "lab"),
    RouteRule("elsewhere", "other-lab"),
]


def test_routes_narrow_by_tenant_project_and_stain_of_any_spelling() -> None:
    found = matching_routes(RULES, tenant="lab", stain=" h&e", project="trial-7", verdict="pass")
    assert found == [
        RouteMatch("any-he", None),
        RouteMatch("everything", None),
        RouteMatch("trial-only", "3"),
    ]


def test_a_slide_of_unknown_stain_or_project_matches_only_routes_without_them() -> None:
    found = matching_routes(RULES, tenant="lab", stain=None, project=None, verdict="pass")
    assert found == [RouteMatch("everything", None)]


def test_a_warned_slide_runs_only_where_warn_is_accepted() -> None:
    found = matching_routes(RULES, tenant="lab", stain="H&E", project=None, verdict="warn")
    assert found == [RouteMatch("any-he", None)]
