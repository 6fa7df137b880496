"""What is known to identify one slide's patient, and what to scan its output for.

Sources (all in quarantine, all possibly patient data):

* the slide's manifest row (:class:`~slidestream_contracts.quarantine.QuarantineManifestV1`,
  written by upload: ``filename``, ``case_id``, ``specimen_id``, ..., ``extra`` with any other
  partner column);
* the file name the partner's client sent (tusd keeps it in ``<key>.info``);
* the values de-identification removed from the slide's metadata (``DeidAudit.scan_tokens``).

Values are kept out of ``repr`` so that a traceback or a log line never shows one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath, PureWindowsPath

from slidestream_contracts.quarantine import QuarantineManifestV1
from slidestream_wsi.deid.audit import MIN_SCAN_TOKEN_CHARS

MAX_TOKEN_CHARS = 256
"""Longer values are free text; their identifying parts are caught as shorter tokens."""

ROLE_CASE = "case"
ROLE_SPECIMEN = "specimen"
ROLE_PATIENT = "patient"

# Manifest columns that name the patient, case or slide (upload's known columns plus the usual
# partner extras). Columns that describe the tissue (species, organ, stain) identify nobody.
_CASE_KEYS = ("case_id",)
_SPECIMEN_KEYS = ("specimen_id",)
_PATIENT_KEYS = ("patient_id", "mrn", "medical_record_number", "patient")
_BARCODE_KEYS = ("barcode", "slide_barcode", "block_barcode", "specimen_barcode")
_NOT_IDENTIFYING = frozenset({"sha256", "species", "organ", "stain", "filename"})
_IDENTIFYING_EXTRA = re.compile(
    r"(^|_)(id|ids|barcode|mrn|accession|name|number|nr|no|dob|birth|patient|subject)($|_)"
)


@dataclass(frozen=True, slots=True)
class SlideIdentifiers:
    """The identifiers known for one slide. Nothing of it may leave quarantine or deid's vault."""

    filename: str | None = field(default=None, repr=False)
    case_id: str | None = field(default=None, repr=False)
    specimen_id: str | None = field(default=None, repr=False)
    patient_id: str | None = field(default=None, repr=False)
    barcodes: tuple[str, ...] = field(default=(), repr=False)
    others: tuple[str, ...] = field(default=(), repr=False)
    """Other identifying manifest values (accession numbers, names...)."""

    def by_role(self) -> dict[str, str]:
        """Original identifiers that get a pseudonym, by role."""
        roles = {
            ROLE_CASE: self.case_id,
            ROLE_SPECIMEN: self.specimen_id,
            ROLE_PATIENT: self.patient_id,
        }
        return {role: value for role, value in roles.items() if value}

    def values(self) -> list[str]:
        """Every known identifying value (for the residual scan)."""
        found = [self.case_id, self.specimen_id, self.patient_id, *self.barcodes, *self.others]
        found.extend(filename_tokens(self.filename))
        return [value for value in found if value]


def _text(value: object) -> str | None:
    if value is None or isinstance(value, (dict, list, bool)):
        return None
    text = str(value).strip()
    return text[:MAX_TOKEN_CHARS] or None


def _first(document: Mapping[str, object], keys: Iterable[str]) -> str | None:
    for key in keys:
        value = _text(document.get(key))
        if value:
            return value
    return None


def parse_tus_info(content: bytes) -> str | None:
    """The client's file name from a tusd ``.info`` object (``MetaData.filename``), if any."""
    try:
        info = json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    metadata = info.get("MetaData") if isinstance(info, dict) else None
    if not isinstance(metadata, dict):
        return None
    return _text(metadata.get("filename"))


def identifiers_from(
    manifest: QuarantineManifestV1 | None, client_filename: str | None
) -> SlideIdentifiers:
    """Collect the identifiers of a slide from its manifest row and its client file name."""
    flat: dict[str, object] = {}
    if manifest is not None:
        flat = manifest.model_dump(exclude={"schema_version", "extra"})
        for key, value in manifest.extra.items():
            flat.setdefault(key.strip().lower(), value)
    barcodes = [v for v in (_text(flat.get(k)) for k in _BARCODE_KEYS) if v]
    used = set(_CASE_KEYS + _SPECIMEN_KEYS + _PATIENT_KEYS + _BARCODE_KEYS) | _NOT_IDENTIFYING
    others = [
        value
        for key, raw in sorted(flat.items())
        if key not in used and _IDENTIFYING_EXTRA.search(key)
        for value in [_text(raw)]
        if value
    ]
    filename = client_filename or _text(flat.get("filename"))
    extra_names = [name for name in (_text(flat.get("filename")),) if name and name != filename]
    return SlideIdentifiers(
        filename=filename,
        case_id=_first(flat, _CASE_KEYS),
        specimen_id=_first(flat, _SPECIMEN_KEYS),
        patient_id=_first(flat, _PATIENT_KEYS),
        barcodes=tuple(barcodes),
        others=tuple(others + [t for name in extra_names for t in filename_tokens(name)]),
    )


def filename_tokens(filename: str | None) -> list[str]:
    """The name as sent and its stem without extensions (``S24-1.ome.tiff`` → ``S24-1``)."""
    if not filename:
        return []
    name = PureWindowsPath(PurePosixPath(filename).name).name  # a client may send a full path
    stem = name.split(".", 1)[0] if not name.startswith(".") else name
    return [token for token in dict.fromkeys((name, stem)) if token]


MIN_METADATA_TOKEN_CHARS = 3
"""Shorter identifiers are not searched even in metadata: one or two characters match numbers
and codes that every slide carries."""


@dataclass(frozen=True, slots=True)
class ScanTokens:
    """What the output is scanned for, split by how it can be searched without false alarms."""

    byte_tokens: tuple[str, ...] = field(repr=False)
    """Searched in every byte of the output: long enough not to turn up by chance in
    gigabytes of compressed tiles (``MIN_SCAN_TOKEN_CHARS``)."""
    metadata_tokens: tuple[str, ...] = field(repr=False)
    """The slide's identifiers, searched as whole words in every metadata string."""

    def __repr__(self) -> str:
        counts = f"bytes=<{len(self.byte_tokens)}>, metadata=<{len(self.metadata_tokens)}>"
        return f"ScanTokens({counts})"


def _unique(values: Iterable[str]) -> list[str]:
    seen: dict[str, str] = {}
    for value in values:
        text = value.strip()[:MAX_TOKEN_CHARS]
        if text and text.casefold() not in seen:
            seen[text.casefold()] = text
    # Longest first, so that a report names the most specific token.
    return sorted(seen.values(), key=lambda t: (-len(t), t))


def scan_tokens(
    identifiers: SlideIdentifiers,
    removed_values: Iterable[str],
    retained_metadata: Iterable[str],
    *,
    min_byte_token_chars: int = MIN_SCAN_TOKEN_CHARS,
) -> ScanTokens:
    """Tokens for the residual-PHI gate.

    * The slide's identifiers (manifest, file name) are always searched: in the metadata as whole
      words, and in the bytes when long enough.
    * Values de-identification removed are searched in the bytes, except those that the output's
      kept metadata still shows: a removed value that is also a kept value (a vendor name, a DICOM
      code such as ``VOLUME``) was judged harmless where it is kept — the same rule the library's
      own post-condition applies — and would otherwise reject every slide of that vendor.
    """
    known = _unique(identifiers.values())
    retained = "\n".join(retained_metadata).casefold()
    removed = [
        value
        for value in _unique(removed_values)
        if len(value) >= min_byte_token_chars and value.casefold() not in retained
    ]
    byte_tokens = _unique([*(t for t in known if len(t) >= min_byte_token_chars), *removed])
    return ScanTokens(
        byte_tokens=tuple(byte_tokens),
        metadata_tokens=tuple(t for t in known if len(t) >= MIN_METADATA_TOKEN_CHARS),
    )
