"""The search SDK: cohorts by metadata (filters, free text, facets, export) and "find similar
tissue" over embeddings, through the catalog service's search API.

    from slidestream_client.search_client import SearchClient

    with SearchClient("http://127.0.0.1:8091", token) as search:
        page = search.search("colon", filters=["stain=H&E", "qc_verdict=pass"], facets=["organ"])
        for hit in search.iter_hits(filters=["scanner_vendor=aperio"]):
            ...
        search.export(filters=["stain=H&E"], format="csv", destination="cohort.csv")
        similar = search.similar(slide_id, region=Region(x=0, y=0, width=512, height=512))

The token decides the tenant, server side: a query never names one. Filters are the contracts'
``FIELD OP VALUE`` expressions (:mod:`slidestream_contracts.search`). Every method raises a
:class:`~slidestream_client.errors.SlidestreamError` subclass on failure: a refused query is a
:class:`~slidestream_client.errors.SearchRefusedError` whose ``field`` names the culprit.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal
from uuid import UUID

import httpx
from pydantic import TypeAdapter

from slidestream_client.api_client import TokenApiClient
from slidestream_client.errors import (
    SearchRefusedError,
    error_from_response,
)
from slidestream_contracts.search import (
    Region,
    SearchField,
    SearchPage,
    SimilarHit,
    SimilarPage,
    SimilarQuery,
    SlideHit,
)

"""Per request; an export's timeout applies between two chunks of its body, not to the whole."""
DEFAULT_FACETS: Final = ("stain", "organ", "scanner_vendor", "qc_verdict", "state", "model")
"""The facets ``slidestream search --facets`` asks for: what people narrow a cohort by first."""
DEFAULT_SIMILAR_K: Final = 10

ExportFormat = Literal["csv", "jsonl"]
ExportListener = Callable[[int, int], None]
"""Called after each chunk of an export with the rows and bytes written so far."""

_FIELDS: TypeAdapter[list[SearchField]] = TypeAdapter(list[SearchField])


@dataclass(frozen=True, slots=True)
class ExportResult:
    path: Path
    format: ExportFormat
    rows: int
    size_bytes: int


class SearchClient(TokenApiClient):
    """A tenant's connection to the search API (the partner's token, as for uploads)."""

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self._send(method, path, **kwargs)
        if response.status_code != httpx.codes.OK:
            raise error_from_response(response, refused=SearchRefusedError)
        return response

    # -- metadata search -------------------------------------------------------------------------
    def search(
        self,
        text: str | None = None,
        *,
        filters: Sequence[str] = (),
        facets: Sequence[str] = (),
        sort: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> SearchPage:
        """One page of the slides matching every filter (and ``text``, over names and
        descriptions), with the counts of each facet's values over all pages; ``sort`` is a
        field, ``-field`` for descending."""
        params = _query_params(text, filters, facets, sort, limit, cursor)
        response = self._request("GET", "/v1/search", params=params)
        return SearchPage.model_validate_json(response.content)

    def iter_pages(
        self,
        text: str | None = None,
        *,
        filters: Sequence[str] = (),
        facets: Sequence[str] = (),
        sort: str | None = None,
        limit: int | None = None,
    ) -> Iterator[SearchPage]:
        """Every page, following ``next_cursor`` (facets are asked for on the first only)."""
        page = self.search(text, filters=filters, facets=facets, sort=sort, limit=limit)
        yield page
        while page.next_cursor is not None:
            page = self.search(
                text, filters=filters, sort=sort, limit=limit, cursor=page.next_cursor
            )
            yield page

    def iter_hits(
        self,
        text: str | None = None,
        *,
        filters: Sequence[str] = (),
        sort: str | None = None,
        limit: int | None = None,
    ) -> Iterator[SlideHit]:
        """Every matching slide, page by page (``limit`` is the page size)."""
        for page in self.iter_pages(text, filters=filters, sort=sort, limit=limit):
            yield from page.items

    def export(
        self,
        text: str | None = None,
        *,
        filters: Sequence[str] = (),
        sort: str | None = None,
        format: ExportFormat = "csv",
        destination: Path | str,
        on_progress: ExportListener | None = None,
    ) -> ExportResult:
        """Write every matching slide to ``destination`` as CSV or JSON lines, streamed (memory
        stays at one network read). The file appears complete or not at all: the body goes to a
        ``.part`` file beside it, renamed once the server has sent everything."""
        path = Path(destination)
        partial = path.with_name(f".{path.name}.part")
        params = httpx.QueryParams(
            [("format", format), *_query_params(text, filters, (), sort, None, None)]
        )
        counter = RowCounter(format)
        written_bytes = 0
        try:
            with self._http.stream("GET", "/v1/search/export", params=params) as response:
                if response.status_code != httpx.codes.OK:
                    response.read()
                    raise error_from_response(response, refused=SearchRefusedError)
                with partial.open("wb") as out:
                    for chunk in response.iter_bytes():  # as they arrive
                        out.write(chunk)
                        counter.feed(chunk)
                        written_bytes += len(chunk)
                        if on_progress is not None:
                            on_progress(counter.rows, written_bytes)
            partial.replace(path)
        except httpx.TransportError as error:
            raise self._unreachable(error) from error
        finally:
            partial.unlink(missing_ok=True)
        return ExportResult(path, format, counter.rows, written_bytes)

    def fields(self) -> list[SearchField]:
        """Every field a filter, facet or sort may name (``qc.*`` and ``score.*`` included)."""
        return _FIELDS.validate_json(self._request("GET", "/v1/search/fields").content)

    # -- similarity ------------------------------------------------------------------------------
    def similar(
        self,
        slide_id: UUID | str,
        *,
        region: Region | None = None,
        model: str | None = None,
        k: int = DEFAULT_SIMILAR_K,
        include_same_slide: bool = False,
    ) -> SimilarPage:
        """The ``k`` slides closest to a region of a slide, or to the whole slide (its mosaic
        of representative tiles) without ``region``; ``model`` is the embedding model (the
        only one indexed when ``None``)."""
        query = SimilarQuery(
            slide_id=UUID(str(slide_id)),
            region=region,
            model=model,
            k=k,
            include_same_slide=include_same_slide,
        )
        response = self._request("POST", "/v1/similar", json=query.model_dump(mode="json"))
        return SimilarPage.model_validate_json(response.content)

    def similar_patch(
        self, image: Path | str, *, model: str | None = None, k: int = DEFAULT_SIMILAR_K
    ) -> SimilarPage:
        """The ``k`` slides closest to an image patch (PNG, JPEG), embedded server side with
        the same model as the index."""
        path = Path(image)
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        form = {"k": str(k)} | ({"model": model} if model is not None else {})
        with path.open("rb") as data:
            response = self._request(
                "POST",
                "/v1/similar/patch",
                data=form,
                files={"image": (path.name, data, content_type)},
            )
        return SimilarPage.model_validate_json(response.content)

    def crop_url(self, hit: SimilarHit) -> str:
        """The absolute URL of a hit's thumbnail (fetching it needs the same token)."""
        if hit.crop_url.startswith(("http://", "https://")):
            return hit.crop_url
        return f"{self.api}/{hit.crop_url.lstrip('/')}"

    def crop(self, hit: SimilarHit) -> bytes:
        """The PNG thumbnail of a hit's best-matching tile."""
        return self._request("GET", self.crop_url(hit)).content


def _query_params(
    text: str | None,
    filters: Sequence[str],
    facets: Sequence[str],
    sort: str | None,
    limit: int | None,
    cursor: str | None,
) -> list[tuple[str, str]]:
    """The query string: repeated ``filter`` and ``facet``, the rest once when given."""
    params = [("filter", expression) for expression in filters]
    params += [("facet", field) for field in facets]
    optional = {"q": text, "sort": sort, "cursor": cursor}
    params += [(name, value) for name, value in optional.items() if value]
    if limit is not None:
        params.append(("limit", str(limit)))
    return params


class RowCounter:
    """Records of a CSV or JSON-lines stream, counted chunk by chunk without parsing it. In CSV
    a newline inside a quoted field belongs to the field (RFC 4180: a quote inside a field is
    doubled, which toggles the state twice) and the first record is the header."""

    def __init__(self, format: ExportFormat) -> None:
        self._csv = format == "csv"
        self._quoted = False
        self._lines = 0
        self._line_open = False
        """Bytes after the last newline: a last record without its newline still counts."""

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        if self._csv:
            for index, part in enumerate(chunk.split(b'"')):
                if index:
                    self._quoted = not self._quoted
                if not self._quoted:
                    self._lines += part.count(b"\n")
        else:
            self._lines += chunk.count(b"\n")
        self._line_open = not chunk.endswith(b"\n")

    @property
    def rows(self) -> int:
        records = self._lines + (1 if self._line_open else 0)
        return max(records - 1, 0) if self._csv else records
