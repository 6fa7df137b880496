"""Generated catalogue rows for the metadata search benchmark, and fast loaders for both engines.

The rows look like a pathology archive's: two tenants (60/40), 40 projects (skewed), stains,
organs, four scanner vendors with their formats, QC verdicts (80 % pass), uploads spread over two
years, eight QC measures per QC'd slide, two models' slide-level scores per inferred slide, and a
free-text document (project, organ, stain, a diagnosis, the specimen type, the case id).

Loading: the search tables' secondary indexes and (SQLite) full-text triggers are dropped, the rows
go in by ``COPY`` (PostgreSQL) or one ``executemany`` transaction per chunk (SQLite), then every
index is recreated from the definition the migrations wrote and the FTS5 index rebuilt, as a bulk
load does in production.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import numpy as np
from sqlalchemy import Engine, text

from slidestream_platform.db import is_postgres

TENANTS: Final = ("bench-a", "bench-b")
START: Final = datetime(2024, 12, 1, tzinfo=UTC)
SPAN_S: Final = 2 * 365 * 86_400
CHUNK: Final = 50_000
TABLES: Final = ("search_slide", "search_measure", "search_score", "search_model_run")
PROJECTS: Final = tuple(f"P-{n:02d}" for n in range(40))
STAINS: Final = {"H&E": 0.6, "IHC": 0.25, "PAS": 0.05, "Masson": 0.04, "Giemsa": 0.03, None: 0.03}
ORGANS: Final = {
    "colon": 0.2, "breast": 0.18, "lung": 0.15, "prostate": 0.12, "skin": 0.08, "liver": 0.07,
    "kidney": 0.06, "stomach": 0.06, "lymph node": 0.06, None: 0.02,
}  # fmt: skip
VENDORS: Final = {"aperio": 0.45, "hamamatsu": 0.3, "philips": 0.15, "3dhistech": 0.1}
VENDOR_DETAIL: Final = {
    "aperio": (("GT 450", "AT2"), "svs", "tiff"),
    "hamamatsu": (("NanoZoomer S360", "NanoZoomer XR"), "ndpi", "tiff"),
    "philips": (("UFS",), "isyntax", "zip"),
    "3dhistech": (("Pannoramic 1000",), "mrxs", "zip"),
}
VERDICTS: Final = {"pass": 0.8, "warn": 0.12, "fail": 0.06, None: 0.02}
DIAGNOSES: Final = (
    "adenocarcinoma", "adenoma", "normal", "inflammation", "hyperplasia", "carcinoma in situ",
    "metastasis", "lymphoma", "melanoma", "fibrosis", "necrosis", "dysplasia", "polyp",
    "squamous cell carcinoma", "ductal carcinoma", "lobular carcinoma", "granuloma", "ulcer",
)  # fmt: skip
SPECIMENS: Final = ("biopsy", "resection", "excision", "core needle biopsy")
MEASURES: Final = (
    "tissue_fraction", "blur_fraction", "pen_fraction", "fold_fraction", "bubble_fraction",
    "saturation", "contrast", "brightness",
)  # fmt: skip
MODELS: Final = {"tumour": "fraction", "grade": "high_grade"}


@dataclass(frozen=True, slots=True)
class Chunk:
    slides: list[dict[str, Any]]
    measures: list[tuple[uuid.UUID, str, float]]
    scores: list[tuple[uuid.UUID, str, str, float]]
    runs: list[tuple[uuid.UUID, str, str, datetime]]


def _pick(rng: np.random.Generator, weights: dict[Any, float], size: int) -> list[Any]:
    keys = list(weights)
    p = np.array(list(weights.values()))
    return [keys[i] for i in rng.choice(len(keys), size=size, p=p / p.sum())]


def chunks(rows: int, seed: int = 15) -> Iterator[Chunk]:
    """``rows`` slides in chunks of :data:`CHUNK`, the same for the same seed."""
    rng = np.random.default_rng(seed)
    project_weights = {p: 1 / (i + 1) for i, p in enumerate(PROJECTS)}
    for start in range(0, rows, CHUNK):
        yield _chunk(rng, min(CHUNK, rows - start), project_weights)


def _chunk(rng: np.random.Generator, n: int, project_weights: dict[Any, float]) -> Chunk:
    tenants = _pick(rng, {TENANTS[0]: 0.6, TENANTS[1]: 0.4}, n)
    projects, stains = _pick(rng, project_weights, n), _pick(rng, STAINS, n)
    organs, vendors = _pick(rng, ORGANS, n), _pick(rng, VENDORS, n)
    verdicts, diagnoses = _pick(rng, VERDICTS, n), rng.integers(0, len(DIAGNOSES), n)
    uploaded_s = rng.integers(0, SPAN_S, n)
    widths, heights = rng.integers(20_000, 150_000, n), rng.integers(15_000, 100_000, n)
    forty = rng.random(n) < 0.6
    inferred = rng.random(n) < 0.9
    sizes = rng.lognormal(21, 0.8, n).astype(np.int64)
    measures_v, scores_v = rng.random((n, len(MEASURES))), rng.beta(2, 5, (n, len(MODELS)))
    slides, measures, scores, runs = [], [], [], []
    for i in range(n):
        slide_id = uuid.UUID(bytes=rng.bytes(16), version=4)
        vendor = vendors[i]
        models, fmt, container = VENDOR_DETAIL[vendor]
        uploaded = START + timedelta(seconds=int(uploaded_s[i]))
        qc_at = uploaded + timedelta(minutes=9) if verdicts[i] else None
        done = bool(inferred[i]) and verdicts[i] in ("pass", "warn")
        case = f"C-{slide_id.hex[:10]}"
        slides.append(
            {
                "slide_id": slide_id, "tenant": tenants[i], "project": projects[i],
                "species": "human", "organ": organs[i], "stain": stains[i],
                "container_format": container, "original_bytes": int(sizes[i]),
                "uploaded_at": uploaded, "case_id": case, "specimen_id": f"S-{slide_id.hex[10:20]}",
                "patient_id": f"PT-{slide_id.hex[20:30]}", "scanner_vendor": vendor,
                "scanner_model": models[i % len(models)], "format": fmt,
                "width_px": int(widths[i]), "height_px": int(heights[i]),
                "mpp_um": 0.25 if forty[i] else 0.5, "objective_power": 40.0 if forty[i] else 20.0,
                "deidentified_bytes": int(sizes[i]),
                "deidentified_at": uploaded + timedelta(minutes=2),
                "level_count": 6, "converted_bytes": int(sizes[i] * 1.4),
                "converted_at": uploaded + timedelta(minutes=6), "qc_verdict": verdicts[i],
                "qc_at": qc_at, "tile_count": 4000 if done else None,
                "inferred_at": uploaded + timedelta(minutes=15) if done else None,
                "state": "inferred" if done else ("qc" if verdicts[i] else "converted"),
                "updated_at": uploaded + timedelta(minutes=15),
                "text": " ".join(
                    [projects[i], organs[i] or "", stains[i] or "", DIAGNOSES[diagnoses[i]],
                     SPECIMENS[i % len(SPECIMENS)], case]
                ),
            }
        )  # fmt: skip
        if verdicts[i]:
            measures += [
                (slide_id, name, float(measures_v[i, m])) for m, name in enumerate(MEASURES)
            ]
        if done:
            for m, (model, output) in enumerate(MODELS.items()):
                scores.append((slide_id, model, output, float(scores_v[i, m])))
                runs.append((slide_id, model, tenants[i], uploaded + timedelta(minutes=15)))
    return Chunk(slides, measures, scores, runs)


SLIDE_COLUMNS: Final = (
    "generation", "slide_id", "tenant", "project", "species", "organ", "stain",
    "container_format", "original_bytes", "uploaded_at", "case_id", "specimen_id", "patient_id",
    "scanner_vendor", "scanner_model", "format", "width_px", "height_px", "mpp_um",
    "objective_power", "deidentified_bytes", "deidentified_at", "level_count", "converted_bytes",
    "levels_json", "images_json", "converted_at", "qc_verdict", "qc_at", "tile_count",
    "inferred_at", "state", "step", "reason", "detail", "status_at", "updated_at", "text",
)  # fmt: skip
FIXED: Final = {"generation": 1, "levels_json": "[]", "images_json": "{}", "detail": ""}
MEASURE_COLUMNS: Final = ("generation", "slide_id", "name", "value", "unit", "verdict")
SCORE_COLUMNS: Final = ("generation", "slide_id", "model", "output", "value")
RUN_COLUMNS: Final = ("generation", "slide_id", "model", "model_version", "tenant", "tile_count",
                      "inferred_at")  # fmt: skip


def _rows(chunk: Chunk) -> dict[str, tuple[tuple[str, ...], list[tuple[Any, ...]]]]:
    slides = [tuple((FIXED | s).get(c) for c in SLIDE_COLUMNS) for s in chunk.slides]
    return {
        "search_slide": (SLIDE_COLUMNS, slides),
        "search_measure": (MEASURE_COLUMNS, [(1, s, n, v, "", "") for s, n, v in chunk.measures]),
        "search_score": (SCORE_COLUMNS, [(1, *row) for row in chunk.scores]),
        "search_model_run": (
            RUN_COLUMNS,
            [(1, s, m, "1", t, 4000, at) for s, m, t, at in chunk.runs],
        ),
    }


def load(engine: Engine, rows: int) -> None:
    """Bulk-load ``rows`` generated slides into a freshly migrated, empty catalog database."""
    postgres = is_postgres(engine)
    saved = _drop_secondary(engine, postgres)
    raw = engine.raw_connection()
    try:
        for chunk in chunks(rows):
            for table, (columns, values) in _rows(chunk).items():
                if postgres:
                    _copy(raw, table, columns, values)
                else:
                    _sqlite_insert(raw, table, columns, values)
            raw.commit()
    finally:
        raw.close()
    with engine.begin() as connection:
        for statement in saved:
            connection.execute(text(statement))
        if not postgres:
            connection.execute(
                text("INSERT INTO search_slide_fts(search_slide_fts) VALUES ('rebuild')")
            )
    # Statistics and (PostgreSQL) the visibility map that index-only scans need: what
    # autovacuum does after a bulk load, done now rather than whenever it comes round.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        for table in TABLES if postgres else ():
            connection.execute(text(f"VACUUM ANALYZE {table}"))
        if not postgres:
            connection.execute(text("ANALYZE"))


def _drop_secondary(engine: Engine, postgres: bool) -> list[str]:
    """Drop the search tables' secondary indexes and triggers; their CREATE statements."""
    names = ", ".join(f"'{table}'" for table in TABLES)
    with engine.begin() as connection:
        if postgres:
            found = connection.execute(
                text(
                    "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = "
                    f"current_schema() AND tablename IN ({names}) AND indexname NOT LIKE '%pkey'"
                )
            ).all()
        else:
            found = connection.execute(
                text(
                    "SELECT name, sql FROM sqlite_master WHERE type IN ('index', 'trigger') "
                    f"AND sql IS NOT NULL AND tbl_name IN ({names})"
                )
            ).all()
        for name, statement in found:
            kind = "TRIGGER" if "TRIGGER" in statement.upper().split("(")[0] else "INDEX"
            connection.execute(text(f'DROP {kind} "{name}"'))
    return [statement for _, statement in found]


def _copy(raw: Any, table: str, columns: tuple[str, ...], values: list[tuple[Any, ...]]) -> None:
    with (
        raw.cursor() as cursor,
        cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
    ):
        for row in values:
            copy.write_row(row)


def _sqlite_insert(
    raw: Any, table: str, columns: tuple[str, ...], values: list[tuple[Any, ...]]
) -> None:
    # SQLAlchemy's SQLite types store a UUID as 32 hex digits and a datetime as ISO text.
    converted = [tuple(_sqlite(v) for v in row) for row in values]
    marks = ", ".join("?" * len(columns))
    cursor: sqlite3.Cursor = raw.cursor()
    cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", converted)


def _sqlite(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return value.hex
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value
