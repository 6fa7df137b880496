"""Requests that must not reach another tenant's data, and the judge of their answers.

The routes come from the services' FastAPI apps themselves (:func:`service_routes`: every
``APIRoute`` of every service, the upload service's internal tusd-hooks router included), so a
route added later is probed without this module changing: its path parameters are filled with
the victim's ids (:data:`PATH_VALUES`), its required query parameters with harmless values, and
a route with a body gets the victim's slide id in it.

An answer *leaks* when it holds a marker of the victim (:class:`Victim`) that the request did
not carry itself (an id the attacker sent may be echoed back, a 422 does). An attempt that names
the victim's slide, batch or object must be refused (:data:`REFUSED`); an API call without a
valid token must answer 401 or 403; any other (the attacker's own search, with its own token)
may answer 2xx, but never with a marker.
"""

from __future__ import annotations

import base64
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from tests.support.routes import OPEN_PATHS

REFUSED = frozenset({401, 403, 404, 405})
"""405: the method is not served at all (tusd's GET, download disabled)."""
RATE_LIMIT_PAUSES = 6
QUERY_VALUES: dict[str, str] = {"x": "0", "y": "0", "size": "64", "tenant": "{tenant}"}
"""Required query parameters of today's routes; an unknown one gets the victim's slide id."""


@dataclass(frozen=True, slots=True)
class Victim:
    """Tenant A: its ids (sent by the attacker, so not markers) and its data (markers)."""

    tenant: str
    slide_id: str
    batch_id: str
    markers: tuple[str, ...]
    """Strings only A's data holds: its tenant name, file names, digests, object keys."""

    def leaked(self, body: bytes, sent: str) -> list[str]:
        """The markers in ``body`` that the request (``sent``: URL, headers, body) lacked."""
        text = body.decode("utf-8", "replace").lower()
        return [m for m in self.markers if m.lower() in text and m.lower() not in sent.lower()]


@dataclass(frozen=True, slots=True)
class Route:
    service: str
    base_url: str
    method: str
    path: str
    path_params: tuple[str, ...]
    query_params: tuple[str, ...]
    """Required ones only."""
    has_body: bool
    form: bool


@dataclass(frozen=True, slots=True)
class Attempt:
    label: str
    method: str
    url: str
    credential: str
    """``none``, ``malformed`` or ``other-tenant`` (B's token)."""
    names_victim: bool
    headers: dict[str, str] = field(default_factory=dict)
    open_route: bool = False
    """Health and metrics: open without a token (but never with A's data)."""
    json: Any = None
    files: dict[str, tuple[str, bytes, str]] | None = None
    data: dict[str, str] | None = None
    params: list[tuple[str, str]] = field(default_factory=list)

    def sent(self) -> str:
        return f"{self.url} {self.params} {self.headers} {self.json} {self.data}"


@dataclass(frozen=True, slots=True)
class Answer:
    attempt: Attempt
    status: int
    leaked: tuple[str, ...]

    def failure(self) -> str | None:
        a = self.attempt
        where = f"{a.credential} {a.method} {a.label} {httpx.URL(a.url).raw_path.decode()[:120]}"
        if self.leaked:
            return f"{where}: {self.status} with A's data {list(self.leaked)}"
        if a.open_route:
            return None
        without_token = REFUSED if a.names_victim else frozenset({401, 403})
        if a.credential != "other-tenant" and self.status not in without_token:
            return f"{where}: answered {self.status} without a valid token"
        if a.names_victim and self.status not in REFUSED:
            return f"{where}: answered {self.status} for A's resource"
        if self.status >= 500:
            return f"{where}: server error {self.status}"
        return None


def app_routes(service: str, base_url: str, app: FastAPI) -> list[Route]:
    """Every API route of ``app`` (included routers' too), health and metrics included."""
    found: list[Route] = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or context.path is None:
            continue
        dependant = route.dependant
        query = tuple(
            p.name for p in _all_params(dependant, "query_params") if p.field_info.is_required()
        )
        body = _all_params(dependant, "body_params")
        form = any(type(p.field_info).__name__ in ("File", "Form") for p in body)
        for method in sorted(route.methods or ()):
            found.append(
                Route(
                    service,
                    base_url,
                    method,
                    context.path,
                    tuple(re.findall(r"\{([^}:]+)", context.path)),
                    query,
                    bool(body),
                    form,
                )
            )
    return found


def _all_params(dependant: Any, kind: str) -> list[Any]:
    params = list(getattr(dependant, kind))
    for sub in dependant.dependencies:
        params += _all_params(sub, kind)
    return params


def attempts_for(route: Route, victim: Victim, tokens: dict[str, str | None]) -> list[Attempt]:
    """The route called for the victim's ids with each credential of ``tokens``."""
    values = {
        "slide_id": victim.slide_id,
        "batch_id": victim.batch_id,
        "backfill_id": str(uuid.uuid4()),
        "name": "tissue-embedding",
        "version": "1",
    }
    path = route.path
    for name in route.path_params:
        path = path.replace(f"{{{name}}}", values.get(name, victim.slide_id))
    params = [
        (q, QUERY_VALUES.get(q, victim.slide_id).format(tenant=victim.tenant))
        for q in route.query_params
    ]
    names_victim = any(p in ("slide_id", "batch_id") for p in route.path_params)
    body: dict[str, Any] = {}
    if route.has_body and not route.form:
        body = {"json": {"slide_id": victim.slide_id}}
        names_victim = names_victim or route.path in ("/v1/similar",)
    elif route.form:
        body = {"files": {"image": ("a.png", PNG_1PX, "image/png")}, "data": {"model": "x"}}
    return [
        Attempt(
            f"{route.service} {route.path}",
            route.method,
            route.base_url.rstrip("/") + path,
            credential,
            names_victim,
            {} if token is None else {"Authorization": token},
            open_route=route.path in OPEN_PATHS,
            params=params,
            **body,
        )
        for credential, token in tokens.items()
    ]


PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c4944415408"
    "d763f8cfc0f00f0003010100c9fe92ef0000000049454e44ae426082"
)


def send(client: httpx.Client, attempt: Attempt, victim: Victim) -> Answer:
    """One attempt (waiting out a 429, which is no answer about the data), judged."""
    for _ in range(RATE_LIMIT_PAUSES):
        response = client.request(
            attempt.method,
            attempt.url,
            headers=attempt.headers,
            params=attempt.params,
            json=attempt.json,
            files=attempt.files,
            data=attempt.data,
        )
        if response.status_code != 429:
            break
        time.sleep(min(10.0, float(response.headers.get("Retry-After", "1"))))
    raw = response.content + str(dict(response.headers)).encode()
    raw += _tus_metadata(response.headers.get("Upload-Metadata", ""))
    return Answer(attempt, response.status_code, tuple(victim.leaked(raw, attempt.sent())))


def _tus_metadata(header: str) -> bytes:
    """tus ``Upload-Metadata`` (``key base64,...``) decoded: a file name hides there."""
    decoded = b""
    for pair in header.split(","):
        _, _, value = pair.strip().partition(" ")
        try:
            decoded += b" " + base64.b64decode(value, validate=True)
        except ValueError:
            continue
    return decoded


def object_keys(s3: Any, tenant: str, skip: frozenset[str]) -> Iterator[tuple[str, str]]:
    """(bucket, key) of every object under ``<tenant>/`` in every bucket outside ``skip``."""
    for bucket in s3.list_buckets():
        if bucket.name in skip:
            continue
        for item in s3.list_objects(bucket.name, prefix=f"{tenant}/", recursive=True):
            yield bucket.name, str(item.object_name)


def key_guesses(tus_url: str, s3_endpoints: list[str], keys: list[tuple[str, str]]) -> list[str]:
    """URLs that name A's objects: anonymous S3 GETs (path style, on every S3 server), tusd's
    upload URLs for the key (bare, with a fake multipart id, and traversing up)."""
    urls: list[str] = []
    for bucket, key in keys:
        urls += [f"{endpoint.rstrip('/')}/{bucket}/{key}" for endpoint in s3_endpoints]
        urls += [
            f"{tus_url.rstrip('/')}/{key}",
            f"{tus_url.rstrip('/')}/{key}+{uuid.uuid4().hex}",
            f"{tus_url.rstrip('/')}/..%2F{bucket}%2F{key.replace('/', '%2F')}",
        ]
    return urls


def save_lines(path: Path, answers: list[Answer]) -> None:
    """Every attempt and its status, for the scenario's record."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "\n".join(
            f"{a.status} {a.attempt.credential} {a.attempt.method} {a.attempt.url}" for a in answers
        )
        + "\n",
        encoding="utf-8",
    )
