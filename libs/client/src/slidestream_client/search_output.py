"""How ``slidestream search`` shows things: the slides of a cohort, facet counts with a bar,
similar slides, the searchable fields."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from rich.table import Table

from slidestream_contracts.search import (
    FacetCount,
    SearchField,
    SimilarHit,
    SimilarPage,
    SlideHit,
)

BAR_WIDTH = 30
"""Characters of the longest facet bar (the most frequent value)."""
NO_VALUE = "(none)"
"""A facet's count of slides without a value."""

_HIT_COLUMNS = (
    ("stain", "stain"),
    ("organ", "organ"),
    ("vendor", "scanner_vendor"),
    ("verdict", "qc_verdict"),
    ("state", "state"),
)
"""Table heading and search field of the columns between the slide id and the upload time."""


def hits_table(hits: Sequence[SlideHit], *, total: int, more: bool) -> Table:
    """The slides of one page (or of every page with ``--all``)."""
    title = f"slides: {len(hits)} of {total}"
    caption = "more pages: --all, or --limit N" if more else None
    table = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
    table.add_column("slide id", no_wrap=True)
    for heading, _ in _HIT_COLUMNS:
        table.add_column(heading, overflow="fold")
    table.add_column("uploaded", no_wrap=True)
    for hit in hits:
        values = [_text(hit.fields.get(field)) for _, field in _HIT_COLUMNS]
        table.add_row(str(hit.slide_id), *values, _when(hit.fields.get("uploaded_at")))
    return table


def facet_tables(facets: dict[str, tuple[FacetCount, ...]]) -> list[Table]:
    """One table per facet: each value, its count and a bar scaled to the largest count."""
    tables = []
    for field, counts in facets.items():
        table = Table(title=field, title_justify="left")
        table.add_column("value", overflow="fold")
        table.add_column("count", justify="right")
        table.add_column("", no_wrap=True)
        largest = max((count.count for count in counts), default=0)
        for count in counts:
            value = NO_VALUE if count.value is None else count.value
            table.add_row(value, str(count.count), facet_bar(count.count, largest))
        tables.append(table)
    return tables


def facet_bar(count: int, largest: int) -> str:
    """A bar of ``count`` against ``largest``; any non-zero count shows at least one block."""
    if count <= 0 or largest <= 0:
        return ""
    return "█" * max(1, round(count / largest * BAR_WIDTH))


def similar_table(page: SimilarPage, crop_url: Callable[[SimilarHit], str]) -> Table:
    """Similar slides, closest first, with their best tile and its thumbnail's URL."""
    title = f"similar slides ({page.model} version {page.model_version})"
    table = Table(title=title, title_justify="left")
    table.add_column("slide id", no_wrap=True)
    for heading in ("x", "y", "size px", "distance"):
        table.add_column(heading, justify="right", no_wrap=True)
    table.add_column("thumbnail", overflow="fold")
    for hit in page.items:
        table.add_row(
            str(hit.slide_id),
            str(hit.x),
            str(hit.y),
            str(hit.size_px),
            f"{hit.distance:.4f}",
            crop_url(hit),
        )
    return table


def fields_table(fields: Iterable[SearchField]) -> Table:
    table = Table(title="search fields", title_justify="left")
    for heading in ("field", "kind", "facet", "description"):
        table.add_column(heading, overflow="fold")
    for field in fields:
        table.add_row(
            field.name, field.kind.value, "yes" if field.facetable else "", field.description
        )
    return table


def _text(value: object) -> str:
    return "-" if value is None or value == "" else str(value)


def _when(value: object) -> str:
    """An instant to the minute (UTC as the server sent it); other values as they are."""
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M")
        except ValueError:
            return value
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return _text(value)
