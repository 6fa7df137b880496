"""The partner API as the service wires it (``main.create_app``, without starting Kafka): who the
token is, expiry, and the rate limits on a fake clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from slidestream_upload import main
from slidestream_upload.adapters.repository import UploadRepository
from slidestream_upload.settings import UploadSettings
from tests.support.fakes import FakeClock

from .conftest import ADDRESS_RATE, TOKEN_RATE


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_valid_token_names_its_tenant(
    api: httpx.AsyncClient, uploads: UploadRepository
) -> None:
    issued = uploads.issue_token("acme", expires_at=datetime.now(UTC) + timedelta(days=1))

    answer = await api.get("/v1/info", headers=bearer(issued.token))

    assert (answer.status_code, answer.json()["tenant"]) == (200, "acme")


async def test_an_expired_token_is_refused_with_401_saying_it_expired(
    api: httpx.AsyncClient, uploads: UploadRepository
) -> None:
    issued = uploads.issue_token("acme", expires_at=datetime.now(UTC) - timedelta(seconds=1))

    answer = await api.get("/v1/info", headers=bearer(issued.token))

    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == "Bearer"
    assert answer.json()["reason"] == "token-expired"
    assert "expired at" in answer.json()["message"]


async def test_the_old_token_works_through_the_rotation_grace(
    api: httpx.AsyncClient, uploads: UploadRepository
) -> None:
    old = uploads.issue_token("acme")
    new = uploads.rotate_token(old.token_id, grace=timedelta(hours=1))
    cut = uploads.issue_token("acme")
    uploads.rotate_token(cut.token_id, grace=timedelta(0))

    assert (await api.get("/v1/info", headers=bearer(old.token))).status_code == 200
    assert (await api.get("/v1/info", headers=bearer(new.token))).status_code == 200
    assert (await api.get("/v1/info", headers=bearer(cut.token))).status_code == 401


async def test_a_token_past_its_burst_gets_429_with_retry_after(
    api: httpx.AsyncClient, uploads: UploadRepository, clock: FakeClock
) -> None:
    token = uploads.issue_token("acme").token
    other = uploads.issue_token("acme").token
    for _ in range(TOKEN_RATE.burst):
        assert (await api.get("/v1/info", headers=bearer(token))).status_code == 200

    refused = await api.get("/v1/info", headers=bearer(token))

    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "1"
    assert refused.json() == {
        "reason": "rate-limited",
        "message": "too many requests from this token; retry in 1 s",
    }
    assert (await api.get("/v1/info", headers=bearer(other))).status_code == 200
    clock.advance(1.0)
    assert (await api.get("/v1/info", headers=bearer(token))).status_code == 200


async def test_an_address_past_its_burst_gets_429_even_with_unknown_tokens(
    api: httpx.AsyncClient, clock: FakeClock
) -> None:
    for attempt in range(ADDRESS_RATE.burst):
        guess = await api.get("/v1/info", headers=bearer(f"ssk_guess-{attempt}"))
        assert guess.status_code == 401

    refused = await api.get("/v1/info", headers=bearer("ssk_guess-next"))

    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "1"  # 0.5 s at 2 per second, rounded up
    assert "address" in refused.json()["message"]
    clock.advance(0.5)
    assert (await api.get("/v1/info", headers=bearer("ssk_guess-last"))).status_code == 401


def test_the_limits_come_from_the_settings() -> None:
    settings = UploadSettings(
        rate_limit_token_per_s=0.5,
        rate_limit_token_burst=1,
        rate_limit_address_per_s=3.0,
        rate_limit_address_burst=2,
    )
    limits = main.partner_rate_limits(settings)

    assert limits.per_token.take("t") == 0.0
    assert limits.per_token.take("t") == pytest.approx(2.0, abs=0.01)
    assert [limits.per_address.take("a") > 0 for _ in range(3)] == [False, False, True]
