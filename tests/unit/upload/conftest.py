"""The upload service as ``main.create_app`` wires it, without starting Kafka (the lifespan does
not run): its migrated SQLite database with tenant ``acme``, the rate limits on a fake clock,
and a client of its hooks port that carries tusd's credentials."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from slidestream_platform.db import make_engine, upgrade_to_head
from slidestream_platform.service import ServiceApp
from slidestream_upload import main
from slidestream_upload.adapters.repository import UploadRepository
from slidestream_upload.domain.rate_limits import PartnerRateLimits, Rate, TokenBuckets
from slidestream_upload.settings import UploadSettings
from tests.support.fakes import FakeClock

TOKEN_RATE = Rate(per_s=1.0, burst=3)
ADDRESS_RATE = Rate(per_s=2.0, burst=5)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


HOOKS_SECRET = "conftest-hooks-secret-0123456789abcdef"


@pytest.fixture
def settings(tmp_path: Path) -> UploadSettings:
    secret_file = tmp_path / "tusd-hooks-secret"
    secret_file.write_text(HOOKS_SECRET)
    return UploadSettings(
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'upload.db'}",
        tusd_hooks_secret_file=secret_file,
    )


@pytest.fixture
def uploads(settings: UploadSettings) -> UploadRepository:
    engine = make_engine(settings.database, "upload")
    upgrade_to_head(engine, "upload", main.MIGRATIONS_DIR)
    uploads = UploadRepository(engine)
    uploads.create_tenant("acme", quota_bytes=1 << 40)
    return uploads


@pytest.fixture
async def api(
    settings: UploadSettings, clock: FakeClock, uploads: UploadRepository
) -> AsyncIterator[httpx.AsyncClient]:
    app = main.create_app(settings)
    app.state.rate_limits = PartnerRateLimits(
        per_token=TokenBuckets(TOKEN_RATE, clock=clock),
        per_address=TokenBuckets(ADDRESS_RATE, clock=clock),
    )
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://upload") as client:
        yield client


@pytest.fixture
async def hooks(
    settings: UploadSettings, uploads: UploadRepository
) -> AsyncIterator[httpx.AsyncClient]:
    """The hooks port's app, called as tusd calls it (HTTP Basic with the shared secret)."""
    app = main.create_app(settings)
    assert isinstance(app, ServiceApp)
    [hooks_app] = app.internal_apps.values()
    transport = httpx.ASGITransport(app=hooks_app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://upload", auth=("tusd", HOOKS_SECRET)
    ) as client:
        yield client
