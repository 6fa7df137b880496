"""Batch manifests: what a partner says it is sending, and how that compares with what arrived.

A manifest is CSV (header row) or JSON (a list of objects, or ``{"slides": [...]}``) with one row
per slide: ``filename`` and ``sha256`` are required; ``case_id``, ``specimen_id``, ``species``,
``organ`` and ``stain`` are known columns; any other column is kept as metadata. Case and specimen
ids may identify a patient, so the manifest stays in quarantine and de-identification scans slides
for them. The slide-fact columns (``mpp_um``, ``objective_power``, ``scanner``:
:mod:`slidestream_contracts.slide_facts`) are checked here, so a wrong unit is refused with the
manifest, naming its row and column.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from slidestream_contracts.slide_facts import SlideFactsError, parse_slide_facts
from slidestream_upload.domain.filenames import sanitize_filename

MAX_MANIFEST_ROWS = 50_000
MIN_IDENTIFIER_CHARS = 4
"""Shorter identifiers ("7", "A1") would match inside any label; they are not looked for."""
KNOWN_COLUMNS = ("filename", "sha256", "case_id", "specimen_id", "species", "organ", "stain")
_HEX = frozenset("0123456789abcdef")


class ManifestError(ValueError):
    """The manifest cannot be read; the message says which row and why."""


@dataclass(frozen=True, slots=True)
class ManifestRow:
    filename: str
    sha256: str
    case_id: str | None = None
    specimen_id: str | None = None
    species: str | None = None
    organ: str | None = None
    stain: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


def _row(index: int, raw: dict[str, object]) -> ManifestRow:
    values = {str(k).strip().lower(): "" if v is None else str(v).strip() for k, v in raw.items()}
    filename = values.get("filename", "")
    sha256 = values.get("sha256", "").lower()
    if not filename:
        raise ManifestError(f"row {index}: filename is required")
    if len(sha256) != 64 or not set(sha256) <= _HEX:
        raise ManifestError(f"row {index}: sha256 must be 64 hex digits")
    try:
        parse_slide_facts(values)
    except SlideFactsError as error:
        raise ManifestError(f"row {index}: {error}") from error
    return ManifestRow(
        filename=sanitize_filename(filename),
        sha256=sha256,
        case_id=values.get("case_id") or None,
        specimen_id=values.get("specimen_id") or None,
        species=values.get("species") or None,
        organ=values.get("organ") or None,
        stain=values.get("stain") or None,
        extra={k: v for k, v in values.items() if k not in KNOWN_COLUMNS and v},
    )


def parse_manifest(content: bytes, content_type: str) -> list[ManifestRow]:
    """Rows of a CSV or JSON manifest; raises :class:`ManifestError` with the offending row."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ManifestError("manifest must be UTF-8") from error
    raw_rows: list[dict[str, object]]
    if "json" in content_type or text.lstrip().startswith(("[", "{")):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as error:
            raise ManifestError(f"invalid JSON: {error.msg} at line {error.lineno}") from error
        if isinstance(parsed, dict):
            parsed = parsed.get("slides")
        if not isinstance(parsed, list) or not all(isinstance(r, dict) for r in parsed):
            raise ManifestError('JSON manifest must be a list of objects or {"slides": [...]}')
        raw_rows = parsed
    else:
        raw_rows = list(csv.DictReader(io.StringIO(text)))
    if not raw_rows:
        raise ManifestError("manifest has no rows")
    if len(raw_rows) > MAX_MANIFEST_ROWS:
        raise ManifestError(f"manifest has more than {MAX_MANIFEST_ROWS} rows")
    rows = [_row(index, raw) for index, raw in enumerate(raw_rows, start=1)]
    names = [row.filename for row in rows]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ManifestError(f"file names appear twice: {', '.join(duplicates[:5])}")
    return rows


@dataclass(frozen=True, slots=True)
class ArrivedFile:
    filename: str
    sha256: str | None
    """Verified digest of the stored bytes (``None`` while the upload is unfinished)."""
    slide_id: str


@dataclass(frozen=True, slots=True)
class BatchReport:
    matched: list[str]
    missing: list[str]
    extra: list[str]
    checksum_mismatch: list[str]
    pending: list[str]

    @property
    def complete(self) -> bool:
        return not (self.missing or self.extra or self.checksum_mismatch or self.pending)


def reconcile(rows: list[ManifestRow], arrived: list[ArrivedFile]) -> BatchReport:
    """Compare the manifest with the uploads that named this batch, by file name."""
    expected = {row.filename: row for row in rows}
    by_name = {file.filename: file for file in arrived}
    matched: list[str] = []
    mismatch: list[str] = []
    pending: list[str] = []
    for name, row in expected.items():
        file = by_name.get(name)
        if file is None:
            continue
        if file.sha256 is None:
            pending.append(name)
        elif file.sha256 == row.sha256:
            matched.append(name)
        else:
            mismatch.append(name)
    return BatchReport(
        matched=sorted(matched),
        missing=sorted(set(expected) - set(by_name)),
        extra=sorted(set(by_name) - set(expected)),
        checksum_mismatch=sorted(mismatch),
        pending=sorted(pending),
    )


def public_labels(
    labels: dict[str, str | None], identifiers: Iterable[str | None]
) -> dict[str, str | None]:
    """The labels (species, organ, stain, project: free text) a slide's events may carry.

    A label holding one of its manifest row's identifiers — case id, specimen id, file name
    (also without its extension), case-insensitively — is left out (``None``): it would carry
    the identifier past quarantine, into the catalog and its search. The row itself stays in
    quarantine, where de-identification reads it.
    """
    needles: set[str] = set()
    for value in identifiers:
        for form in ((value or "").strip(), (value or "").strip().rsplit(".", 1)[0]):
            if len(form) >= MIN_IDENTIFIER_CHARS:
                needles.add(form.lower())
    return {
        name: None if text and any(n in text.lower() for n in needles) else text
        for name, text in labels.items()
    }
