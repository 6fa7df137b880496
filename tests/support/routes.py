"""Every route of a service's app called without a token: which answer what (the read APIs must
all answer 401; only the health and metrics endpoints are open)."""

from __future__ import annotations

import re
from uuid import UUID

import httpx
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
"""What the kubelet and the scrapers call, without credentials."""
ANY_ID = UUID("0199a000-0000-7000-8000-000000000001")
"""Stands in for every path parameter: the token check comes before the path is validated."""


def guarded_routes(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every API route outside :data:`OPEN_PATHS`, included routers' too."""
    return {
        (method, context.path)
        for context in iter_route_contexts(app.routes)
        if isinstance(route := context.original_route, APIRoute)
        and context.path is not None
        and context.path not in OPEN_PATHS
        for method in route.methods or ()
    }


async def answers_without_a_token(app: FastAPI) -> dict[tuple[str, str], int]:
    """The status each guarded route answers to a request without ``Authorization``."""
    transport = httpx.ASGITransport(app=app)
    answers: dict[tuple[str, str], int] = {}
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        for method, path in sorted(guarded_routes(app)):
            url = re.sub(r"\{[^}]+\}", str(ANY_ID), path)
            answers[(method, path)] = (await client.request(method, url)).status_code
    return answers
