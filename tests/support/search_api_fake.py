"""The search API's contract in memory, served through ``httpx.MockTransport`` for the client's
tests: ``/v1/search`` (``=`` filters, facets, sort, cursor pages), ``/v1/search/export``,
``/v1/search/fields``, ``/v1/similar`` and ``/v1/similar/patch``, with the service's error body
``{"detail": {"reason", "field", "message"}}``."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections import Counter
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import default

import httpx

from slidestream_contracts.search import SEARCH_FIELDS, SimilarQuery

SEARCH_API = "http://search.test"
TOKEN = "s3cr3t-search-token"
MODEL = "tissue"
EXPORT_COLUMNS = ("slide_id", "stain", "organ", "description")


def slide_rows(count: int) -> list[dict[str, object]]:
    """Slides of two stains and two organs; every third description spans two lines and quotes
    a word (what a CSV export must survive)."""
    rows: list[dict[str, object]] = []
    for index in range(count):
        description = f'biopsy {index}\nsecond line, "quoted"' if index % 3 == 0 else "resection"
        rows.append(
            {
                "slide_id": str(uuid.UUID(int=index + 1)),
                "stain": "H&E" if index % 2 == 0 else "IHC",
                "organ": "colon" if index < count // 2 else "lung",
                "scanner_vendor": "aperio",
                "qc_verdict": "pass",
                "state": "indexed",
                "uploaded_at": f"2026-01-{index % 28 + 1:02d}T08:30:00Z",
                "description": description,
            }
        )
    return rows


def _error(status: int, reason: str, message: str, field: str | None = None) -> httpx.Response:
    return httpx.Response(
        status, json={"detail": {"reason": reason, "field": field, "message": message}}
    )


@dataclass
class FakeSearchApi:
    token: str = TOKEN
    slides: list[dict[str, object]] = field(default_factory=lambda: slide_rows(5))
    requests: list[httpx.Request] = field(default_factory=list)
    similar_bodies: list[dict[str, object]] = field(default_factory=list)
    patches: list[dict[str, bytes]] = field(default_factory=list)
    unavailable: bool = False

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return _error(401, "unauthorized", "unknown token")
        if self.unavailable:
            return _error(503, "index-unavailable", "the search index does not answer")
        routes = {
            ("GET", "/v1/search"): self._search,
            ("GET", "/v1/search/export"): self._export,
            ("GET", "/v1/search/fields"): self._fields,
            ("POST", "/v1/similar"): self._similar,
            ("POST", "/v1/similar/patch"): self._patch,
        }
        route = routes.get((request.method, request.url.path))
        return route(request) if route is not None else _error(404, "not-found", "no route")

    def queries(self, path: str = "/v1/search") -> list[list[tuple[str, str]]]:
        """The query parameters of each request to ``path``, in order."""
        return [
            list(request.url.params.multi_items())
            for request in self.requests
            if request.url.path == path
        ]

    # -- metadata --------------------------------------------------------------------------------
    def _matching(self, request: httpx.Request) -> list[dict[str, object]] | httpx.Response:
        params = request.url.params
        rows = self.slides
        text = params.get("q")
        if text:
            rows = [row for row in rows if text in f"{row['organ']} {row['description']}"]
        for expression in params.get_list("filter"):
            name, _, value = expression.partition("=")
            if name not in SEARCH_FIELDS:
                return _error(400, "unknown-field", f"unknown field {name!r}", "filter")
            rows = [row for row in rows if str(row.get(name)) in value.split(",")]
        sort = params.get("sort")
        if sort:
            key = sort.lstrip("-")
            if key not in SEARCH_FIELDS:
                return _error(400, "unknown-field", f"cannot sort on {key!r}", "sort")
            rows = sorted(rows, key=lambda row: str(row.get(key)), reverse=sort.startswith("-"))
        return rows

    def _search(self, request: httpx.Request) -> httpx.Response:
        rows = self._matching(request)
        if isinstance(rows, httpx.Response):
            return rows
        params = request.url.params
        limit = int(params.get("limit", "50"))
        offset = int(params.get("cursor", "0"))
        page = rows[offset : offset + limit]
        facets = {
            name: [
                {"value": value, "count": count}
                for value, count in Counter(row.get(name) for row in rows).most_common()
            ]
            for name in params.get_list("facet")
        }
        more = offset + limit < len(rows)
        body = {
            "items": [
                {
                    "slide_id": row["slide_id"],
                    "fields": {k: v for k, v in row.items() if k in SEARCH_FIELDS},
                }
                for row in page
            ],
            "total": len(rows),
            "facets": facets,
            "next_cursor": str(offset + limit) if more else None,
        }
        return httpx.Response(200, json=body)

    def export_body(self, export_format: str) -> bytes:
        """What ``/v1/search/export`` sends for every slide."""
        if export_format == "jsonl":
            return b"".join(json.dumps(row).encode() + b"\n" for row in self.slides)
        text = io.StringIO()
        writer = csv.DictWriter(text, EXPORT_COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.slides)
        return text.getvalue().encode()

    def _export(self, request: httpx.Request) -> httpx.Response:
        export_format = request.url.params.get("format")
        if export_format not in {"csv", "jsonl"}:
            return _error(422, "invalid-format", "format must be csv or jsonl", "format")
        rows = self._matching(request)
        if isinstance(rows, httpx.Response):
            return rows
        body = self.export_body(export_format)
        chunks = [body[at : at + 7] for at in range(0, len(body), 7)]  # split mid-record
        return httpx.Response(200, content=iter(chunks))

    @staticmethod
    def _fields(request: httpx.Request) -> httpx.Response:
        listing = [
            {
                "name": spec.name,
                "kind": spec.kind.value,
                "description": spec.description,
                "facetable": spec.facetable,
            }
            for spec in SEARCH_FIELDS.values()
        ]
        return httpx.Response(200, json=listing)

    # -- similarity ------------------------------------------------------------------------------
    def _page(self, k: int, model: str | None) -> httpx.Response:
        if model not in {None, MODEL}:
            return _error(422, "unknown-model", f"no embeddings of model {model!r}", "model")
        items = [
            {
                "slide_id": row["slide_id"],
                "x": 512 * rank,
                "y": 256,
                "size_px": 224,
                "distance": 0.05 * (rank + 1),
                "crop_url": f"/v1/similar/crop/{row['slide_id']}?x={512 * rank}&y=256",
            }
            for rank, row in enumerate(self.slides[:k])
        ]
        return httpx.Response(200, json={"model": MODEL, "model_version": "1", "items": items})

    def _similar(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.similar_bodies.append(body)
        query = SimilarQuery.model_validate(body)
        if str(query.slide_id) not in {str(row["slide_id"]) for row in self.slides}:
            return _error(404, "not-found", "no such slide", "slide_id")
        return self._page(query.k, query.model)

    def _patch(self, request: httpx.Request) -> httpx.Response:
        head = f"Content-Type: {request.headers['Content-Type']}\r\n\r\n".encode()
        message = BytesParser(policy=default).parsebytes(head + request.read())
        form: dict[str, bytes] = {}
        for part in message.iter_parts():
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            form[str(part.get_param("name", header="content-disposition"))] = payload
        self.patches.append(form)
        model = form["model"].decode() if "model" in form else None
        return self._page(int(form["k"]), model)
