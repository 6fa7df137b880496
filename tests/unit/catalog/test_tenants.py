"""Token → tenant through the upload API: its refusals reach the catalog's caller."""

from __future__ import annotations

import httpx
import pytest
from fastapi import HTTPException

from slidestream_catalog.tenants import TenantResolver

UPLOAD_API = "http://upload.test"


def resolver(answer: httpx.Response) -> TenantResolver:
    transport = httpx.MockTransport(lambda _request: answer)
    return TenantResolver(UPLOAD_API, 30.0, httpx.AsyncClient(transport=transport))


async def test_a_known_token_is_its_tenant() -> None:
    answer = httpx.Response(200, json={"tenant": "acme"})
    assert await resolver(answer).tenant_for("ssk_a") == "acme"


async def test_an_unknown_revoked_or_expired_token_has_no_tenant() -> None:
    answer = httpx.Response(401, json={"reason": "token-expired", "message": "expired"})
    assert await resolver(answer).tenant_for("ssk_a") is None


async def test_the_upload_apis_rate_limit_is_passed_on_with_its_retry_after() -> None:
    answer = httpx.Response(429, headers={"Retry-After": "7"}, json={"reason": "rate-limited"})

    with pytest.raises(HTTPException) as raised:
        await resolver(answer).tenant_for("ssk_a")

    assert raised.value.status_code == 429
    assert raised.value.headers == {"Retry-After": "7"}
