"""``slidestream search``: cohorts by metadata, and slides with similar tissue (the catalog
service's search API, ``SEARCH_API``). The token decides the tenant.

    slidestream search colon --filter stain=H&E --filter "qc.tissue_fraction>0.3" --facets
    slidestream search --filter scanner_vendor=aperio --export csv --out cohort.csv
    slidestream search fields
    slidestream search similar --slide ID --region 1024,2048,512,512 --level 1

Exit codes: 0 done; 1 the server refused the query (the field is named); 2 bad arguments;
3 the server could not answer (token refused, no such slide, unavailable, unreachable).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from slidestream_client.cli_options import JsonOption, TokenOption, require_token
from slidestream_client.errors import ApiError, AuthenticationError, SearchRefusedError
from slidestream_client.output import (
    PER_FILE_ERRORS,
    ExitCode,
    error_message,
    error_reason,
    human_bytes,
    json_line,
    write_stdout_line,
)
from slidestream_client.progress import ExportBar
from slidestream_client.search_client import (
    DEFAULT_FACETS,
    DEFAULT_SIMILAR_K,
    ExportFormat,
    ExportResult,
    SearchClient,
)
from slidestream_client.search_output import (
    facet_tables,
    fields_table,
    hits_table,
    similar_table,
)
from slidestream_client.settings import ClientSettings
from slidestream_contracts.search import (
    FILTER_OPERATORS,
    MAX_PAGE_SIZE,
    MAX_SIMILAR_K,
    Region,
    SearchPage,
    SlideHit,
)


class TextOrCommandGroup(TyperGroup):
    """``search TEXT`` and ``search SUBCOMMAND`` side by side: a first argument that names a
    subcommand runs it; any other is the search text (``search -- similar`` searches for the
    word). Options may follow the text (``search colon --json``)."""

    allow_interspersed_args = True
    context_class = typer.Context

    def parse_args(  # type: ignore[override]  # context_class: every context is typer's
        self, ctx: typer.Context, args: list[str]
    ) -> list[str]:
        if args and args[0] in self.commands:
            # "--" ends the group's options, "" fills its TEXT: the subcommand and its own
            # options are what is left, as click hands them on.
            rest = super().parse_args(ctx, ["--", "", *args])
            ctx.params["text"] = None
            return rest
        return super().parse_args(ctx, args)

    def get_params(self, ctx: typer.Context) -> list[Any]:  # type: ignore[override]
        # A subcommand's usage line lists its parents' arguments: TEXT is not one of its own.
        # (Any: typer's vendored click keeps its Parameter class private.)
        params = super().get_params(ctx)
        if ctx.command is self:
            return params
        return [param for param in params if param.name != "text"]


search_app = typer.Typer(
    name="search",
    cls=TextOrCommandGroup,
    invoke_without_command=True,
    help="Find slides: cohorts by metadata with facets and export, and similar tissue.",
)

SearchApiOption = Annotated[
    str | None,
    typer.Option(
        "--api",
        help="Search API base URL (env SEARCH_API; default http://127.0.0.1:8091).",
        show_default=False,
    ),
]


def _connect(api: str | None, token: str | None) -> SearchClient:
    settings = ClientSettings.load()
    return SearchClient(api or settings.search_api, require_token(token, settings))


@contextmanager
def _reported(json_output: bool) -> Iterator[None]:
    """Failures as ``error: FIELD: message`` (or one JSON line) and the matching exit code:
    1 for a refused query, 3 when the server could not answer."""
    try:
        yield
    except PER_FILE_ERRORS as error:
        refused = isinstance(error, SearchRefusedError)
        field = error.field if isinstance(error, ApiError) else None
        message = error_message(error)
        if json_output:
            failure = {"status": "failed", "error": error_reason(error), "message": message}
            write_stdout_line(json_line({**failure, "field": field}))
        else:
            err = Console(stderr=True)
            where = f"{field}: " if field and not message.startswith(field) else ""
            err.print(f"[red]error:[/] {escape(where + message)}", highlight=False)
            if isinstance(error, AuthenticationError):
                err.print("Search with your tenant's token: SLIDESTREAM_TOKEN or --token.")
        raise typer.Exit(ExitCode.FAILED if refused else ExitCode.ERROR) from error


def _check_filters(expressions: list[str]) -> list[str]:
    """Each ``--filter`` is ``FIELD OP VALUE``; the server checks the field and the value."""
    for expression in expressions:
        at = min((i for op in FILTER_OPERATORS if (i := expression.find(op)) >= 0), default=-1)
        if at <= 0:
            operators = " ".join(FILTER_OPERATORS)
            raise typer.BadParameter(
                f"{expression!r} is not FIELD OP VALUE (OP one of {operators}; =a,b: one of)",
                param_hint="--filter",
            )
    return expressions


TextArgument = Annotated[
    str | None,
    typer.Argument(help="Free text over slide names and descriptions.", show_default=False),
]
FilterOption = Annotated[
    list[str] | None,
    typer.Option(
        "--filter",
        help="FIELD OP VALUE with OP one of = != > >= < <= (=a,b: one of; numbers and ISO "
        "dates compare as such); repeatable, all must hold. `slidestream search fields` lists "
        "the fields.",
        show_default=False,
    ),
]
FacetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--facet", help="Count the values of this field (repeatable).", show_default=False
    ),
]
FacetsOption = Annotated[
    bool,
    typer.Option("--facets", help=f"Count the usual facets: {', '.join(DEFAULT_FACETS)}."),
]
SortOption = Annotated[
    str | None,
    typer.Option("--sort", help="Sort by a field; -FIELD for descending.", show_default=False),
]
LimitOption = Annotated[
    int | None,
    typer.Option("--limit", min=1, max=MAX_PAGE_SIZE, help="Slides per page.", show_default=False),
]
AllOption = Annotated[bool, typer.Option("--all", help="Every page, following the cursor.")]
ExportOption = Annotated[
    ExportFormat | None,
    typer.Option(
        "--export", help="Write every matching slide to --out (csv or jsonl).", show_default=False
    ),
]
OutOption = Annotated[
    Path | None,
    typer.Option("--out", help="The export's file.", dir_okay=False, show_default=False),
]


@search_app.callback()
def search(
    ctx: typer.Context,
    text: TextArgument = None,
    filters: FilterOption = None,
    facet: FacetOption = None,
    facets: FacetsOption = False,
    sort: SortOption = None,
    limit: LimitOption = None,
    all_pages: AllOption = False,
    export: ExportOption = None,
    out: OutOption = None,
    json_output: JsonOption = False,
    api: SearchApiOption = None,
    token: TokenOption = None,
) -> None:
    """Slides of your tenant matching TEXT and every --filter, with facet counts; --json prints
    each page as one JSON line. Subcommands: fields, similar."""
    if ctx.invoked_subcommand is not None:
        return
    expressions = _check_filters(filters or [])
    if (export is None) != (out is None):
        raise typer.BadParameter("give --export and --out together", param_hint="--export")
    fields = list(dict.fromkeys([*(facet or []), *(DEFAULT_FACETS if facets else ())]))
    with _connect(api, token) as client, _reported(json_output):
        if export is not None and out is not None:
            result = _export(client, text, expressions, sort, export, out, json_output)
            _report_export(result, json_output)
            return
        pages = client.iter_pages(text, filters=expressions, facets=fields, sort=sort, limit=limit)
        _show_pages(pages if all_pages else iter([next(pages)]), json_output)


def _show_pages(pages: Iterator[SearchPage], json_output: bool) -> None:
    """JSON: each page as it comes. Table: the slides of every page, then the first page's
    facets (they count every page)."""
    hits: list[SlideHit] = []
    first: SearchPage | None = None
    last: SearchPage | None = None
    for page in pages:
        if json_output:
            write_stdout_line(page.model_dump_json())
        first = page if first is None else first
        last = page
        hits.extend(page.items)
    if json_output or first is None or last is None:
        return
    console = Console()
    console.print(hits_table(hits, total=first.total, more=last.next_cursor is not None))
    for table in facet_tables(first.facets):
        console.print(table)


def _export(
    client: SearchClient,
    text: str | None,
    filters: list[str],
    sort: str | None,
    export_format: ExportFormat,
    out: Path,
    json_output: bool,
) -> ExportResult:
    def run(bar: ExportBar | None) -> ExportResult:
        return client.export(
            text,
            filters=filters,
            sort=sort,
            format=export_format,
            destination=out,
            on_progress=bar.update if bar is not None else None,
        )

    if json_output:
        return run(None)
    with ExportBar(Console(stderr=True), out) as bar:
        return run(bar)


def _report_export(result: ExportResult, json_output: bool) -> None:
    data = {
        "status": "exported",
        "path": str(result.path),
        "format": result.format,
        "rows": result.rows,
        "bytes": result.size_bytes,
    }
    if json_output:
        write_stdout_line(json_line(data))
    else:
        Console().print(
            f"exported {result.rows} slides ({human_bytes(result.size_bytes)}) to {result.path}",
            markup=False,
            highlight=False,
        )


@search_app.command("fields")
def fields(
    json_output: JsonOption = False,
    api: SearchApiOption = None,
    token: TokenOption = None,
) -> None:
    """The fields --filter, --facet and --sort may name, with their kind."""
    with _connect(api, token) as client, _reported(json_output):
        listing = client.fields()
    if json_output:
        rows = [{**asdict(field), "facetable": field.facetable} for field in listing]
        write_stdout_line(json_line({"fields": rows}))
    else:
        Console().print(fields_table(listing))


def parse_region(value: str, level: int) -> Region:
    """``X,Y,W,H`` in pixels of pyramid level ``level``."""
    parts = [part.strip() for part in value.split(",")]
    try:
        x, y, width, height = (int(part) for part in parts)
        return Region(x=x, y=y, width=width, height=height, level=level)
    except (ValueError, ValidationError) as error:
        raise typer.BadParameter(
            f"{value!r} is not X,Y,W,H (four whole numbers of pixels; W and H above 0)",
            param_hint="--region",
        ) from error


SlideOption = Annotated[
    str | None,
    typer.Option(
        "--slide", help="Query by this slide (its region, or all of it).", show_default=False
    ),
]
RegionOption = Annotated[
    str | None,
    typer.Option("--region", help="X,Y,W,H: a rectangle of the slide.", show_default=False),
]
LevelOption = Annotated[
    int, typer.Option("--level", min=0, help="Pyramid level of --region's pixels.")
]
ModelOption = Annotated[
    str | None,
    typer.Option("--model", help="Embedding model (default: the one indexed).", show_default=False),
]
KOption = Annotated[
    int, typer.Option("--k", min=1, max=MAX_SIMILAR_K, help="How many similar slides.")
]
PatchOption = Annotated[
    Path | None,
    typer.Option(
        "--patch",
        help="Query by an image patch (PNG, JPEG) instead of a slide.",
        exists=True,
        dir_okay=False,
        readable=True,
        show_default=False,
    ),
]


@search_app.command("similar")
def similar(
    slide: SlideOption = None,
    region: RegionOption = None,
    level: LevelOption = 0,
    model: ModelOption = None,
    k: KOption = DEFAULT_SIMILAR_K,
    patch: PatchOption = None,
    json_output: JsonOption = False,
    api: SearchApiOption = None,
    token: TokenOption = None,
) -> None:
    """Slides with tissue like a region of a slide, a whole slide, or an image patch."""
    if (slide is None) == (patch is None):
        raise typer.BadParameter("give either --slide or --patch", param_hint="--slide")
    if patch is not None and region is not None:
        raise typer.BadParameter("a --patch query takes no --region", param_hint="--region")
    if region is None and level:
        raise typer.BadParameter("--level applies to --region", param_hint="--level")
    query_region = parse_region(region, level) if region is not None else None
    slide_id = _slide_id(slide) if slide is not None else None
    with _connect(api, token) as client, _reported(json_output):
        if slide_id is not None:
            page = client.similar(slide_id, region=query_region, model=model, k=k)
        else:
            assert patch is not None
            page = client.similar_patch(patch, model=model, k=k)
    if json_output:
        write_stdout_line(page.model_dump_json())
    else:
        Console().print(similar_table(page, client.crop_url))


def _slide_id(value: str) -> UUID:
    try:
        return UUID(value)
    except ValueError as error:
        raise typer.BadParameter(f"{value!r} is not a slide id", param_hint="--slide") from error
