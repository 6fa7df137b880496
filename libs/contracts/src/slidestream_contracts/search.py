"""The search API's vocabulary, defined once for the catalog service, the SDK and the CLI.

* :data:`SEARCH_FIELDS`: every field a cohort query may filter, facet or sort on, with its kind.
  Two open families add one field per name seen in events: ``qc.<measure>`` (QC's measures,
  numbers) and ``score.<model>.<output>`` (a model's slide-level summary, numbers).
* filter expressions, as the CLI and the HTTP API take them: ``FIELD OP VALUE`` with ``OP`` one of
  ``= != > >= < <=`` (``=a,b`` means one of); numbers and ISO 8601 dates compare as such.
* the wire shapes of a result page, a facet, a similarity hit.

The tenant is never a field a caller sets: the token decides it, server side.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Final
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class FieldKind(StrEnum):
    KEYWORD = "keyword"
    """Exact match, one of, not; facetable."""
    NUMBER = "number"
    """Ranges; ``=`` compares exactly."""
    DATETIME = "datetime"
    """Ranges on ISO 8601 instants (a date alone means its midnight UTC)."""


@dataclass(frozen=True, slots=True)
class SearchField:
    name: str
    kind: FieldKind
    description: str

    @property
    def facetable(self) -> bool:
        return self.kind is FieldKind.KEYWORD


def _fields(*fields: SearchField) -> dict[str, SearchField]:
    return {field.name: field for field in fields}


K, N, D = FieldKind.KEYWORD, FieldKind.NUMBER, FieldKind.DATETIME

SEARCH_FIELDS: Final[dict[str, SearchField]] = _fields(
    SearchField("project", K, "the manifest's project (study) column"),
    SearchField("case_id", K, "pseudonymous case id (de-identification)"),
    SearchField("specimen_id", K, "pseudonymous specimen id (de-identification)"),
    SearchField("patient_id", K, "pseudonymous patient id (de-identification)"),
    SearchField("species", K, "manifest species"),
    SearchField("organ", K, "manifest organ"),
    SearchField("stain", K, "manifest stain"),
    SearchField("scanner_vendor", K, "scanner vendor read from the slide"),
    SearchField("scanner_model", K, "scanner model read from the slide"),
    SearchField("format", K, "vendor format of the de-identified slide"),
    SearchField("container_format", K, "container of the upload (tiff, bigtiff, dicom, zip)"),
    SearchField("qc_verdict", K, "QC verdict: pass, warn or fail"),
    SearchField("state", K, "lifecycle state (uploaded ... inferred, rejected, failed:<step>)"),
    SearchField("reason", K, "reason code of a rejection or failure"),
    SearchField("model", K, "a model that has produced outputs for the slide"),
    SearchField("width_px", N, "level-0 width in pixels"),
    SearchField("height_px", N, "level-0 height in pixels"),
    SearchField("level_count", N, "pyramid levels of the converted slide"),
    SearchField("mpp_um", N, "level-0 spacing in µm per pixel"),
    SearchField("objective_power", N, "scanning objective (20, 40, ...)"),
    SearchField("original_bytes", N, "size of the upload in bytes"),
    SearchField("deidentified_bytes", N, "size of the de-identified slide in bytes"),
    SearchField("converted_bytes", N, "size of the converted DICOM + TIFF in bytes"),
    SearchField("tile_count", N, "tissue tiles of the slide's latest model run"),
    SearchField("uploaded_at", D, "when the upload completed"),
    SearchField("deidentified_at", D, "when de-identification finished"),
    SearchField("converted_at", D, "when conversion finished"),
    SearchField("qc_at", D, "when QC finished"),
    SearchField("inferred_at", D, "when the latest model run finished"),
    SearchField("updated_at", D, "the latest event seen for the slide"),
)
QC_FIELD_PREFIX: Final = "qc."
"""``qc.<measure>``: a QC measure's value (numbers; names as QC reports them)."""
SCORE_FIELD_PREFIX: Final = "score."
"""``score.<model>.<output>``: a model's slide-level summary value (numbers)."""
FILTER_OPERATORS: Final = ("!=", ">=", "<=", "=", ">", "<")
"""Longest first, so ``>=`` is never read as ``>``."""
MAX_PAGE_SIZE: Final = 500
"""Server-side ceiling on one page of results (a query can never ask for the whole table)."""
MAX_SIMILAR_K: Final = 100
"""Server-side ceiling on the number of similar slides one query returns."""


class SearchModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FacetCount(SearchModel):
    value: str | None
    """``None`` counts slides without a value (e.g. no stain in the manifest)."""
    count: int


class SlideHit(SearchModel):
    """One slide of a result page: the fields people filter on (every one, ``None`` when no
    event has told it yet), QC's measures and every model's slide-level outputs."""

    slide_id: UUID
    fields: dict[str, str | float | int | datetime | None]
    qc: dict[str, float] = Field(default_factory=dict)
    scores: dict[str, dict[str, float]] = Field(default_factory=dict)
    """``{model: {output: value}}`` of each model's latest version."""


class SearchPage(SearchModel):
    items: tuple[SlideHit, ...]
    total: int
    """How many slides match (all pages)."""
    facets: dict[str, tuple[FacetCount, ...]] = Field(default_factory=dict)
    next_cursor: str | None = None
    """Pass as ``cursor`` for the next page; ``None`` on the last page."""


class SearchFieldInfo(SearchModel):
    """One field a caller may filter on (``GET /v1/search/fields``), including the ``qc.*`` and
    ``score.*`` names the caller's slides have."""

    name: str
    kind: FieldKind
    description: str
    facetable: bool


class Region(SearchModel):
    """A rectangle of a slide at pyramid level ``level`` (pixels of that level)."""

    x: Annotated[int, Field(ge=0)]
    y: Annotated[int, Field(ge=0)]
    width: Annotated[int, Field(gt=0)]
    height: Annotated[int, Field(gt=0)]
    level: Annotated[int, Field(ge=0)] = 0


class SimilarQuery(SearchModel):
    slide_id: UUID
    region: Region | None = None
    """``None``: the whole slide, by its mosaic of representative tiles."""
    model: str | None = None
    """The embedding model (its latest indexed version); ``None``: the only one indexed."""
    k: Annotated[int, Field(ge=1, le=MAX_SIMILAR_K)] = 10
    include_same_slide: bool = False


class SimilarHit(SearchModel):
    slide_id: UUID
    x: int
    """Level-0 pixels of the best-matching tile's top-left corner."""
    y: int
    size_px: int
    """The tile's side in level-0 pixels."""
    distance: float
    """Cosine distance (1 - cosine similarity) of the best tile to the query; lower is closer."""
    crop_url: str
    """Relative URL of a PNG thumbnail of that tile (same token)."""


class SimilarPage(SearchModel):
    model: str
    model_version: str
    items: tuple[SimilarHit, ...]
