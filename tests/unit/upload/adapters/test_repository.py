"""The upload tables: the state changes hooks and the reconciler race for, verification
attempts, and tokens (expiry, rotation, the constant-time check)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest
import sqlalchemy as sa

from slidestream_contracts.tokens import token_sha256
from slidestream_platform.db import DatabaseSettings, downgrade_to, make_engine, upgrade_to_head
from slidestream_upload.adapters.repository import InactiveTokenError, UploadRepository
from slidestream_upload.adapters.tables import UploadRow, UploadState
from slidestream_upload.admin import MIGRATIONS_DIR
from slidestream_upload.domain.admission import Refusal
from slidestream_upload.domain.tokens import UNKNOWN_TOKEN
from tests.support.secrets import spy_compare_digest

BEFORE_EXPIRY_REVISION = "9d9ed12ec41f"


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    return make_engine(DatabaseSettings(url=f"sqlite:///{tmp_path / 'upload.db'}"), "upload")


@pytest.fixture
def uploads(engine: sa.Engine) -> UploadRepository:
    upgrade_to_head(engine, "upload", MIGRATIONS_DIR)
    uploads = UploadRepository(engine)
    uploads.create_tenant("acme", quota_bytes=1 << 40)
    return uploads


def _receiving(uploads: UploadRepository) -> UploadRow:
    slide_id = uuid4()
    row = UploadRow(
        slide_id=slide_id,
        tenant="acme",
        object_key=f"acme/{slide_id}/original",
        filename="slide.svs",
        declared_size_bytes=1000,
        state=UploadState.RECEIVING.value,
    )
    uploads.add_upload(row)
    return row


def test_a_client_cancellation_ends_a_receiving_upload(uploads: UploadRepository) -> None:
    row = _receiving(uploads)
    uploads.cancel_if_receiving(row.slide_id, detail="the client cancelled the upload")
    stored = uploads.upload(row.slide_id)
    assert stored is not None
    assert (stored.state, stored.reason) == (UploadState.TERMINATED.value, "terminated")
    assert stored.finished_at is not None


def test_the_terminate_hook_of_an_expiry_never_overwrites_it(uploads: UploadRepository) -> None:
    """The reconciler expires an upload by terminating it in tusd, which fires the
    post-terminate hook; whichever lands first, the upload ends expired."""
    row = _receiving(uploads)
    uploads.end(row.slide_id, UploadState.EXPIRED, reason="expired", detail="ttl", sha256=None)
    uploads.cancel_if_receiving(row.slide_id, detail="the client cancelled the upload")
    stored = uploads.upload(row.slide_id)
    assert stored is not None
    assert (stored.state, stored.reason) == (UploadState.EXPIRED.value, "expired")


def test_verification_attempts_are_counted_durably(
    uploads: UploadRepository, tmp_path: Path
) -> None:
    """Committed as each attempt begins: a process that dies mid-verification leaves its count,
    which the next process (another engine on the same database) sees."""
    row = _receiving(uploads)
    assert [uploads.count_verify_attempt(row.slide_id) for _ in range(2)] == [1, 2]
    engine = make_engine(DatabaseSettings(url=f"sqlite:///{tmp_path / 'upload.db'}"), "upload")
    assert UploadRepository(engine).count_verify_attempt(row.slide_id) == 3


def _later(uploads: UploadRepository, token: str, delta: timedelta) -> str | Refusal:
    return uploads.authenticate(token, now=datetime.now(UTC) + delta)


def test_a_token_issued_with_an_expiry_works_until_then_and_is_refused_after(
    uploads: UploadRepository,
) -> None:
    expires_at = datetime.now(UTC) + timedelta(days=90)
    issued = uploads.issue_token("acme", expires_at=expires_at)

    assert _later(uploads, issued.token, timedelta(days=89)) == "acme"
    refused = _later(uploads, issued.token, timedelta(days=91))
    assert isinstance(refused, Refusal)
    assert (refused.status_code, refused.reason) == (401, "token-expired")
    assert uploads.authenticate("ssk_unknown") == UNKNOWN_TOKEN


def test_the_stored_hash_is_checked_with_compare_digest(
    uploads: UploadRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    issued = uploads.issue_token("acme")
    calls = spy_compare_digest(monkeypatch)

    assert uploads.authenticate(issued.token) == "acme"

    assert calls == [(token_sha256(issued.token), token_sha256(issued.token))]


def test_rotation_keeps_the_old_token_for_the_grace_and_the_new_one_after(
    uploads: UploadRepository,
) -> None:
    now = datetime.now(UTC)
    old = uploads.issue_token("acme", label="lims", expires_at=now + timedelta(days=90))

    new = uploads.rotate_token(old.token_id, grace=timedelta(hours=24), now=now)

    assert (new.tenant, new.token_id != old.token_id) == ("acme", True)
    assert new.expires_at is not None  # the old token's whole lifetime again, from now:
    assert abs(new.expires_at - (now + timedelta(days=90))) < timedelta(seconds=1)
    assert _later(uploads, old.token, timedelta(hours=23)) == "acme"
    assert _later(uploads, new.token, timedelta(hours=23)) == "acme"
    refused = _later(uploads, old.token, timedelta(hours=25))
    assert isinstance(refused, Refusal) and refused.reason == "token-expired"
    assert _later(uploads, new.token, timedelta(days=89)) == "acme"
    rows = {row.token_id: row for row in uploads.tokens("acme")}
    assert rows[old.token_id].rotated_to == new.token_id
    assert rows[new.token_id].label == "lims"


def test_a_rotated_revoked_or_unknown_token_cannot_be_rotated(uploads: UploadRepository) -> None:
    rotated = uploads.issue_token("acme")
    uploads.rotate_token(rotated.token_id, grace=timedelta(hours=1))
    revoked = uploads.issue_token("acme")
    uploads.revoke_token(revoked.token_id)

    for token_id in (rotated.token_id, revoked.token_id, uuid4()):
        with pytest.raises(InactiveTokenError):
            uploads.rotate_token(token_id, grace=timedelta(hours=1))
    assert len(uploads.tokens("acme")) == 3  # no successor was issued for the refusals


def test_tokens_issued_before_expiry_existed_keep_working_without_one(
    engine: sa.Engine,
) -> None:
    upgrade_to_head(engine, "upload", MIGRATIONS_DIR)
    downgrade_to(engine, "upload", MIGRATIONS_DIR, BEFORE_EXPIRY_REVISION)  # and back
    token = "ssk_issued-before-the-migration"
    with engine.begin() as connection:
        connection.execute(
            sa.text("INSERT INTO upload_tenant VALUES ('acme', 1, :now)"),
            {"now": datetime.now(UTC)},
        )
        connection.execute(
            sa.text(
                "INSERT INTO upload_token (token_id, tenant, token_sha256, label, created_at)"
                " VALUES (:id, 'acme', :sha, 'old', :now)"
            ),
            {"id": uuid4().hex, "sha": token_sha256(token), "now": datetime.now(UTC)},
        )

    upgrade_to_head(engine, "upload", MIGRATIONS_DIR)
    uploads = UploadRepository(engine)

    assert _later(uploads, token, timedelta(days=10_000)) == "acme"
    [row] = uploads.tokens("acme")
    assert (row.expires_at, row.rotated_to) == (None, None)
