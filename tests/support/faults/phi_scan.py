"""Every byte the platform keeps about a slide outside quarantine, searched for PHI (scenario o).

Where: every object of the tenant in every bucket but ``quarantine`` (and ``models``), on every
S3 server of the stack; every record on every topic that names the slide; every row of the
catalog's, inference's, QC's and conversion's tables for the slide (the upload and deid
schemas are the quarantine side: they hold the file name and the vault by design); the
catalog's answers (the slide, search, cohort export) to the tenant's own token.

How: each PHI string, case-insensitively, as UTF-8, UTF-16 LE and UTF-16 BE.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import httpx
import psycopg
from minio import Minio

from tests.support.faults.ledger import Ledger

SKIPPED_BUCKETS = frozenset({"quarantine", "models"})
QUARANTINE_SCHEMAS = frozenset({"upload", "deid"})
"""Where PHI may stay: the upload's record (file name, free metadata) and deid's vault."""
ENCODINGS = ("utf-8", "utf-16-le", "utf-16-be")


@dataclass(frozen=True, slots=True)
class Needles:
    """PHI strings in every form searched for."""

    phi: tuple[str, ...]
    forms: tuple[tuple[str, bytes], ...] = ()

    @classmethod
    def of(cls, phi: Iterable[str]) -> Needles:
        unique = tuple(dict.fromkeys(phi))
        forms = tuple((p, p.lower().encode(enc)) for p in unique for enc in ENCODINGS)
        return cls(unique, forms)

    def found(self, haystack: bytes) -> set[str]:
        lowered = haystack.lower()
        return {phi for phi, needle in self.forms if needle in lowered}


@dataclass
class Findings:
    places: int = 0
    """Objects, records, rows and answers searched."""
    bytes_scanned: int = 0
    hits: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def scan(self, needles: Needles, where: str, data: bytes) -> None:
        self.places += 1
        self.bytes_scanned += len(data)
        self.hits += [f"{phi!r} in {where}" for phi in sorted(needles.found(data))]


def scan_objects(
    servers: dict[str, Minio], tenant: str, needles: Needles, findings: Findings
) -> None:
    for server, s3 in servers.items():
        for bucket in s3.list_buckets():
            if bucket.name in SKIPPED_BUCKETS:
                continue
            for item in s3.list_objects(bucket.name, prefix=f"{tenant}/", recursive=True):
                name = str(item.object_name)
                response = s3.get_object(bucket.name, name)
                try:
                    data = response.read()
                finally:
                    response.close()
                    response.release_conn()
                stat = s3.stat_object(bucket.name, name)
                metadata = str(dict(stat.metadata or {})).encode()
                findings.scan(needles, f"{server}:{bucket.name}/{name}", data + metadata)
                findings.scan(needles, f"key {server}:{bucket.name}/{name}", name.encode())


def scan_events(ledger: Ledger, slide_ids: list[str], needles: Needles, f: Findings) -> None:
    wanted = [s.encode() for s in slide_ids]
    for record in ledger.records:
        if record.key in slide_ids or any(s in record.value for s in wanted):
            where = f"{record.topic}/{record.partition}@{record.offset}"
            f.scan(needles, where, record.value + (record.key or "").encode())


def _tables(conn: psycopg.Connection[tuple[object, ...]]) -> Iterator[tuple[str, str]]:
    rows = conn.execute(
        "SELECT table_schema, table_name FROM information_schema.columns "
        "WHERE column_name = 'slide_id' AND table_schema <> 'information_schema'"
    ).fetchall()
    for schema, table in rows:
        if str(schema) not in QUARANTINE_SCHEMAS:
            yield str(schema), str(table)


def scan_rows(postgres_url: str, slide_ids: list[str], needles: Needles, f: Findings) -> None:
    with psycopg.connect(postgres_url) as conn:
        for schema, table in _tables(conn):
            query = f'SELECT t::text FROM "{schema}"."{table}" t WHERE slide_id::text = ANY(%s)'
            for (row,) in conn.execute(query, (slide_ids,)).fetchall():  # type: ignore[arg-type]
                f.scan(needles, f"row {schema}.{table}", str(row).encode())


def scan_catalog(
    catalog_api: str, token: str, slide_ids: list[str], needles: Needles, f: Findings
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    api = catalog_api.rstrip("/")
    urls = [f"{api}/slides/{slide_id}" for slide_id in slide_ids]
    urls += [f"{api}/v1/search?limit=100", f"{api}/v1/search/export?format=jsonl"]
    urls += [f"{api}/v1/search/fields", f"{api}/v1/search?facet=project&facet=case_id"]
    with httpx.Client(timeout=60, headers=headers) as client:
        for url in urls:
            answer = client.get(url)
            assert answer.status_code == 200, f"{url}: {answer.status_code} {answer.text[:200]}"
            f.scan(needles, f"GET {url.removeprefix(api)}", answer.content)
