"""How ``slidestream models`` shows things: problems one per line, tables, one-line summaries."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from slidestream_client.model_shapes import LoadResult, ModelDetail, ModelList, Route, RouteList
from slidestream_modelrepo import FieldProblem

ANY = "any"


def print_problems(console: Console, problems: Sequence[FieldProblem]) -> None:
    """``field: message``, one per line, verbatim (no markup, no wrapping: messages quote
    brackets and a line per problem is what scripts and people grep)."""
    for problem in problems:
        console.print(
            f"{problem.field}: {problem.message}", markup=False, highlight=False, soft_wrap=True
        )


def problems_json(problems: Sequence[FieldProblem]) -> list[dict[str, str]]:
    return [{"field": problem.field, "message": problem.message} for problem in problems]


def describe_load(result: LoadResult) -> str:
    text = f"{result.name}: {result.state}"
    if result.canary is not None:
        shapes = ", ".join(f"{name} {shape}" for name, shape in result.canary.outputs.items())
        text += f" (canary in {result.canary.seconds:.2f} s: {shapes})"
    return text


def describe_route(route: Route) -> str:
    qc = "pass" if route.min_qc == "pass" else "pass or warn"
    return (
        f"{route.name} runs on tenant {route.tenant}'s slides: project {route.project or ANY}, "
        f"stain {route.stain or ANY}, QC {qc}, version {route.version or 'newest'}"
    )


def models_table(listing: ModelList) -> Table:
    table = Table(title="models", title_justify="left")
    for column in ("model", "version", "state", "device", "loaded at", "reason"):
        table.add_column(column, overflow="fold")
    for model in listing.models:
        for version in model.versions:
            table.add_row(
                model.name,
                version.version,
                version.state,
                version.device or "-",
                version.loaded_at.isoformat(timespec="seconds") if version.loaded_at else "-",
                version.reason or "",
            )
    return table


def status_tables(detail: ModelDetail) -> tuple[Table, Table]:
    """The versions (state, device, reason) and Triton's statistics per version."""
    loaded = detail.loaded_at.isoformat(timespec="seconds") if detail.loaded_at else "not loaded"
    versions = Table(title=f"{detail.name} (loaded at {loaded})", title_justify="left")
    for column in ("version", "state", "device", "reason"):
        versions.add_column(column, overflow="fold")
    for version in detail.versions:
        versions.add_row(
            version.version, version.state, version.device or "-", version.reason or ""
        )
    statistics = Table(title="statistics", title_justify="left")
    for column in ("version", "inferences", "executions", "queue ms (mean)", "compute ms (mean)"):
        statistics.add_column(column, justify="right")
    for row in detail.statistics:
        statistics.add_row(
            row.version,
            str(row.inference_count),
            str(row.execution_count),
            _ms(row.queue_ms_mean),
            _ms(row.compute_ms_mean),
        )
    return versions, statistics


def routes_table(listing: RouteList) -> Table:
    table = Table(title="routes", title_justify="left")
    for column in ("model", "tenant", "project", "stain", "min QC", "version"):
        table.add_column(column, overflow="fold")
    for route in listing.routes:
        table.add_row(
            route.name,
            route.tenant,
            route.project or ANY,
            route.stain or ANY,
            route.min_qc,
            route.version or "newest",
        )
    return table


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"
