"""Who is calling: every read endpoint answers 401 without a token, and the token alone decides
the tenant (a caller never names one).

Partner tokens belong to the upload API; this module asks it (``GET /v1/info`` with the caller's
token) and remembers the answer for ``token_cache_s`` seconds, keyed by the token's SHA-256.
The upload API's refusals carry through: its 401 (an unknown, revoked or expired token) is this
API's 401, and its 429 (the token's, or this service's address's, rate limit there) is this API's
429 with the same ``Retry-After``. A revoked or expired token may still be answered from the
cache until its entry is ``token_cache_s`` old.
"""

from __future__ import annotations

import time
from typing import Annotated

import httpx
from fastapi import Depends, HTTPException, Request

from slidestream_contracts.tokens import bearer_token, token_sha256


class TenantResolver:
    """Token → tenant through the upload API, with a short-lived cache."""

    def __init__(self, upload_api_url: str, cache_s: float, client: httpx.AsyncClient) -> None:
        self._info_url = upload_api_url.rstrip("/") + "/v1/info"
        self._cache_s = cache_s
        self._client = client
        self._known: dict[str, tuple[str, float]] = {}

    async def tenant_for(self, token: str) -> str | None:
        digest = token_sha256(token)
        cached = self._known.get(digest)
        now = time.monotonic()
        if cached is not None and now - cached[1] < self._cache_s:
            return cached[0]
        try:
            answer = await self._client.get(
                self._info_url, headers={"Authorization": f"Bearer {token}"}
            )
        except httpx.HTTPError as error:
            raise HTTPException(
                status_code=503,
                detail={"reason": "auth-unavailable", "message": f"upload API: {error}"},
            ) from error
        if answer.status_code in (401, 403):
            self._known.pop(digest, None)
            return None
        if answer.status_code == 429:
            raise HTTPException(
                status_code=429,
                detail={"reason": "rate-limited", "message": "too many requests for this token"},
                headers={"Retry-After": answer.headers.get("Retry-After", "1")},
            )
        if answer.status_code != 200:
            raise HTTPException(
                status_code=503,
                detail={
                    "reason": "auth-unavailable",
                    "message": f"upload API answered {answer.status_code}",
                },
            )
        tenant = str(answer.json()["tenant"])
        self._known[digest] = (tenant, now)
        return tenant


async def caller_tenant(request: Request) -> str:
    token = bearer_token(request.headers.get("authorization"))
    if token is None:
        raise HTTPException(
            status_code=401,
            detail={"reason": "unauthenticated", "message": "send Authorization: Bearer <token>"},
            headers={"WWW-Authenticate": "Bearer"},
        )
    resolver: TenantResolver = request.app.state.tenants
    tenant = await resolver.tenant_for(token)
    if tenant is None:
        raise HTTPException(
            status_code=401,
            detail={"reason": "unauthenticated", "message": "unknown, revoked or expired token"},
            headers={"WWW-Authenticate": "Bearer"},
        )
    return tenant


CallerTenant = Annotated[str, Depends(caller_tenant)]
"""A route parameter that is the caller's tenant (401 without a valid token)."""
