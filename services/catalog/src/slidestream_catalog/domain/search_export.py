"""A cohort as a file: CSV (one column per field, then ``qc.*`` and ``score.*`` columns) or JSON
lines (one :class:`SlideHit` per line, as the search API returns it)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Final

from slidestream_contracts.search import (
    QC_FIELD_PREFIX,
    SCORE_FIELD_PREFIX,
    SEARCH_FIELDS,
    SlideHit,
)


class ExportFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"


MEDIA_TYPES: Final = {ExportFormat.CSV: "text/csv", ExportFormat.JSONL: "application/x-ndjson"}


def export_columns(measures: Iterable[str], scores: Iterable[str]) -> list[str]:
    """``slide_id``, every search field, ``qc.<measure>`` and ``score.<model>.<output>``."""
    return [
        "slide_id",
        *SEARCH_FIELDS,
        *(QC_FIELD_PREFIX + name for name in measures),
        *(SCORE_FIELD_PREFIX + name for name in scores),
    ]


def csv_header(columns: list[str]) -> str:
    return _csv_line(columns)


def csv_rows(columns: list[str], hits: Iterable[SlideHit]) -> str:
    return "".join(_csv_line([_cell(_value(hit, name)) for name in columns]) for hit in hits)


def jsonl_rows(hits: Iterable[SlideHit]) -> str:
    return "".join(hit.model_dump_json() + "\n" for hit in hits)


def _value(hit: SlideHit, name: str) -> object:
    if name == "slide_id":
        return hit.slide_id
    if name in SEARCH_FIELDS:
        return hit.fields.get(name)
    if name.startswith(QC_FIELD_PREFIX):
        return hit.qc.get(name[len(QC_FIELD_PREFIX) :])
    model, _, output = name[len(SCORE_FIELD_PREFIX) :].partition(".")
    return hit.scores.get(model, {}).get(output)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def _csv_line(cells: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(cells)
    return buffer.getvalue()
