"""Cohort queries as typed values: filter expressions, the sort, the page size.

A filter is ``FIELD OP VALUE`` (see :mod:`slidestream_contracts.search`): the field decides how the
value is read (a keyword stays text, a number becomes a float, a datetime an instant in UTC) and
which operators make sense (keywords have no order). Every mistake raises
:class:`SearchQueryError`, which names the field and says what was wrong, so an API can answer
4xx with it as it stands.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Final

from slidestream_contracts.search import (
    FILTER_OPERATORS,
    MAX_PAGE_SIZE,
    QC_FIELD_PREFIX,
    SCORE_FIELD_PREFIX,
    SEARCH_FIELDS,
    FieldKind,
)

DEFAULT_SORT: Final = "-uploaded_at"
DEFAULT_PAGE_SIZE: Final = 50
MAX_FILTERS: Final = 50
"""Server-side ceiling on filters per query (each one is a condition the database evaluates)."""
MAX_TEXT_CHARS: Final = 500
MAX_ONE_OF_VALUES: Final = 200
FACET_FIELD_NAMES: Final = tuple(name for name, f in SEARCH_FIELDS.items() if f.facetable)

SearchValue = str | float | datetime


class Op(StrEnum):
    EQ = "="
    NE = "!="
    GT = ">"
    GE = ">="
    LT = "<"
    LE = "<="


ORDERED_OPS: Final = frozenset({Op.GT, Op.GE, Op.LT, Op.LE})


class SearchQueryError(ValueError):
    """A query a caller got wrong: ``field`` names the culprit (``filter``, ``sort``, ``cursor``,
    ``limit``, ``q`` or a field name), ``reason`` is a short machine-readable code."""

    def __init__(self, field: str, reason: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.reason = reason
        self.message = message


@dataclass(frozen=True, slots=True)
class FieldRef:
    """A field a query names: one of :data:`SEARCH_FIELDS`, ``qc.<measure>`` or
    ``score.<model>.<output>``."""

    name: str
    kind: FieldKind
    measure: str | None = None
    """``qc.<measure>``: the measure's name."""
    model: str | None = None
    """``score.<model>.<output>``: the model and its output."""
    output: str | None = None

    @property
    def is_column(self) -> bool:
        """A plain column of the slide row (not ``model``, ``qc.*`` or ``score.*``)."""
        return self.measure is None and self.model is None and self.name != "model"


@dataclass(frozen=True, slots=True)
class Filter:
    field: FieldRef
    op: Op
    values: tuple[SearchValue, ...]
    """One value, or several for ``=a,b`` (one of)."""

    def canonical(self) -> str:
        return f"{self.field.name}{self.op.value}{','.join(_canonical(v) for v in self.values)}"


@dataclass(frozen=True, slots=True)
class SortSpec:
    field: FieldRef
    descending: bool

    def canonical(self) -> str:
        return ("-" if self.descending else "") + self.field.name


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """What a caller asks for; the tenant is added by the server, never by the caller."""

    text: str = ""
    filters: tuple[Filter, ...] = ()
    facets: tuple[str, ...] = ()
    sort: SortSpec = field(default_factory=lambda: parse_sort(DEFAULT_SORT))
    limit: int = DEFAULT_PAGE_SIZE


def resolve_field(name: str) -> FieldRef:
    """The field ``name`` refers to; unknown names get the closest known ones in the message."""
    known = SEARCH_FIELDS.get(name)
    if known is not None:
        return FieldRef(known.name, known.kind)
    if name.startswith(QC_FIELD_PREFIX) and len(name) > len(QC_FIELD_PREFIX):
        return FieldRef(name, FieldKind.NUMBER, measure=name[len(QC_FIELD_PREFIX) :])
    if name.startswith(SCORE_FIELD_PREFIX):
        model, _, output = name[len(SCORE_FIELD_PREFIX) :].partition(".")
        if model and output:
            return FieldRef(name, FieldKind.NUMBER, model=model, output=output)
        raise SearchQueryError(
            name, "bad-field", f"{name!r}: a score is named score.<model>.<output>"
        )
    close = difflib.get_close_matches(name, [*SEARCH_FIELDS, "qc.", "score."], n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise SearchQueryError(name, "unknown-field", f"unknown field {name!r}{hint}")


def parse_filter(expression: str) -> Filter:
    """``FIELD OP VALUE`` → :class:`Filter` (``=a,b``: one of)."""
    name, op, raw = _split(expression)
    ref = resolve_field(name)
    if ref.kind is FieldKind.KEYWORD and op in ORDERED_OPS:
        raise SearchQueryError(
            name, "bad-operator", f"{name} is a keyword: use = or != (not {op.value})"
        )
    parts = raw.split(",") if op in (Op.EQ, Op.NE) else [raw]
    if len(parts) > MAX_ONE_OF_VALUES:
        raise SearchQueryError(name, "too-many-values", f"{name}: at most {MAX_ONE_OF_VALUES}")
    values = tuple(parse_value(ref, part.strip()) for part in parts)
    return Filter(ref, op, values)


def parse_value(ref: FieldRef, raw: str) -> SearchValue:
    """A filter's or a cursor's value read as the field's kind says."""
    if raw == "":
        raise SearchQueryError(ref.name, "missing-value", f"{ref.name}: no value to compare with")
    if ref.kind is FieldKind.NUMBER:
        try:
            number = float(raw)
        except ValueError:
            raise SearchQueryError(
                ref.name, "wrong-type", f"{ref.name} is a number; {raw!r} is not"
            ) from None
        if number != number or number in (float("inf"), float("-inf")):
            raise SearchQueryError(ref.name, "wrong-type", f"{ref.name}: {raw!r} is not finite")
        return number
    if ref.kind is FieldKind.DATETIME:
        return parse_instant(ref.name, raw)
    return raw


def parse_instant(name: str, raw: str) -> datetime:
    """ISO 8601: a date alone is its midnight UTC; an instant without offset is UTC."""
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        instant = datetime.fromisoformat(raw)
    except ValueError:
        raise SearchQueryError(
            name, "wrong-type", f"{name} is a date or instant (ISO 8601); {raw!r} is not"
        ) from None
    if instant.tzinfo is None:
        return instant.replace(tzinfo=UTC)
    return instant.astimezone(UTC)


def parse_sort(spec: str | None) -> SortSpec:
    """``FIELD`` (ascending) or ``-FIELD`` (descending); ties are broken by slide id."""
    raw = (spec or DEFAULT_SORT).strip()
    descending = raw.startswith("-")
    ref = resolve_field(raw.removeprefix("-").removeprefix("+"))
    if not ref.is_column:
        raise SearchQueryError(
            ref.name, "bad-sort", f"cannot sort on {ref.name}: sort on a field of the slide"
        )
    return SortSpec(ref, descending)


def parse_facets(names: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    facets: list[str] = []
    for name in names:
        ref = resolve_field(name)
        if ref.kind is not FieldKind.KEYWORD or not (ref.is_column or ref.name == "model"):
            raise SearchQueryError(
                name, "not-facetable", f"{name} is not facetable; keyword fields are"
            )
        if name not in facets:
            facets.append(name)
    return tuple(facets)


def build_query(
    *,
    text: str | None = None,
    filters: list[str] | tuple[str, ...] = (),
    facets: list[str] | tuple[str, ...] = (),
    sort: str | None = None,
    limit: int | None = None,
) -> SearchQuery:
    """A whole query from what a caller sent (strings, as the HTTP API and the CLI take them)."""
    clean_text = (text or "").strip()
    if len(clean_text) > MAX_TEXT_CHARS:
        raise SearchQueryError("q", "too-long", f"q: at most {MAX_TEXT_CHARS} characters")
    if len(filters) > MAX_FILTERS:
        raise SearchQueryError("filter", "too-many-filters", f"at most {MAX_FILTERS} filters")
    size = DEFAULT_PAGE_SIZE if limit is None else limit
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise SearchQueryError("limit", "bad-limit", f"limit: 1 to {MAX_PAGE_SIZE}")
    return SearchQuery(
        text=clean_text,
        filters=tuple(parse_filter(expression) for expression in filters),
        facets=parse_facets(facets),
        sort=parse_sort(sort),
        limit=size,
    )


def _split(expression: str) -> tuple[str, Op, str]:
    # The first operator in the text splits it (field names hold no operator characters);
    # at one position the longest operator wins, so ">=" is never read as ">".
    for position, _ in enumerate(expression):
        for token in FILTER_OPERATORS:
            if expression.startswith(token, position):
                name = expression[:position].strip()
                if not name:
                    break
                return name, Op(token), expression[position + len(token) :].strip()
    raise SearchQueryError(
        "filter",
        "bad-filter",
        f"{expression!r}: write FIELD OP VALUE with OP one of {' '.join(FILTER_OPERATORS)}",
    )


def _canonical(value: SearchValue) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return repr(value) if isinstance(value, float) else value
