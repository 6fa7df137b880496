"""The upload service's persistence: tenants, tokens, uploads, batches (SQLModel)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID, uuid4

from sqlalchemy import Engine, func, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from slidestream_contracts.tokens import token_matches, token_sha256
from slidestream_platform.publication import PublishMark
from slidestream_upload.adapters.tables import (
    ACTIVE_STATES,
    BatchItemRow,
    BatchRow,
    SlideFixRow,
    TenantRow,
    TokenRow,
    UploadRow,
    UploadState,
    utc_now,
)
from slidestream_upload.domain.admission import Refusal
from slidestream_upload.domain.manifest import ManifestRow
from slidestream_upload.domain.tokens import (
    UNKNOWN_TOKEN,
    new_token,
    plan_rotation,
    token_refusal,
)


class TenantExistsError(ValueError):
    pass


class UnknownTenantError(LookupError):
    pass


class InactiveTokenError(LookupError):
    """No such token, or it was revoked, has expired or was already rotated."""


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token_id: UUID
    tenant: str
    token: str
    """Shown once; only its hash is stored."""
    expires_at: datetime | None = None


class UploadRepository:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with Session(self._engine, expire_on_commit=False) as session, session.begin():
            yield session

    # -- tenants and tokens ----------------------------------------------------------------

    def create_tenant(self, slug: str, *, quota_bytes: int) -> None:
        with self._session() as session:
            if session.get(TenantRow, slug) is not None:
                raise TenantExistsError(slug)
            session.add(TenantRow(slug=slug, quota_bytes=quota_bytes))

    def tenants(self) -> list[TenantRow]:
        with self._session() as session:
            return list(session.exec(select(TenantRow).order_by(col(TenantRow.slug))))

    def issue_token(
        self, tenant: str, *, label: str = "", expires_at: datetime | None = None
    ) -> IssuedToken:
        with self._session() as session:
            if session.get(TenantRow, tenant) is None:
                raise UnknownTenantError(tenant)
            return self._add_token(session, tenant, label=label, expires_at=expires_at)

    @staticmethod
    def _add_token(
        session: Session, tenant: str, *, label: str, expires_at: datetime | None
    ) -> IssuedToken:
        token = new_token()
        row = TokenRow(
            token_id=uuid4(),
            tenant=tenant,
            token_sha256=token_sha256(token),
            label=label,
            expires_at=expires_at,
        )
        session.add(row)
        return IssuedToken(token_id=row.token_id, tenant=tenant, token=token, expires_at=expires_at)

    def rotate_token(
        self,
        token_id: UUID,
        *,
        grace: timedelta,
        expires_in: timedelta | None = None,
        now: datetime | None = None,
    ) -> IssuedToken:
        """A successor for the token's tenant and label; the old token keeps working until
        ``grace`` has passed (see ``domain.tokens.plan_rotation``). One transaction: either
        both changes happen or neither."""
        now = now or utc_now()
        with self._session() as session:
            old = session.get(TokenRow, token_id, with_for_update=True)
            if (
                old is None
                or old.rotated_to is not None
                or token_refusal(revoked_at=old.revoked_at, expires_at=old.expires_at, now=now)
            ):
                raise InactiveTokenError(token_id)
            plan = plan_rotation(
                created_at=old.created_at,
                expires_at=old.expires_at,
                grace=grace,
                now=now,
                expires_in=expires_in,
            )
            issued = self._add_token(
                session, old.tenant, label=old.label, expires_at=plan.new_expires_at
            )
            old.expires_at = plan.old_expires_at
            old.rotated_to = issued.token_id
            session.add(old)
            return issued

    def revoke_token(self, token_id: UUID) -> bool:
        with self._session() as session:
            row = session.get(TokenRow, token_id)
            if row is None or row.revoked_at is not None:
                return False
            row.revoked_at = utc_now()
            session.add(row)
            return True

    def tokens(self, tenant: str) -> list[TokenRow]:
        with self._session() as session:
            query = select(TokenRow).where(TokenRow.tenant == tenant)
            return list(session.exec(query.order_by(col(TokenRow.created_at))))

    def authenticate(self, token: str, *, now: datetime | None = None) -> str | Refusal:
        """The token's tenant, or the 401 to answer (unknown, revoked or expired).

        The indexed lookup by hash finds the candidate; :func:`token_matches` makes the
        decision in constant time (``slidestream_contracts.tokens``)."""
        with self._session() as session:
            row = session.exec(
                select(TokenRow).where(TokenRow.token_sha256 == token_sha256(token))
            ).first()
        if row is None or not token_matches(token, row.token_sha256):
            return UNKNOWN_TOKEN
        refusal = token_refusal(
            revoked_at=row.revoked_at, expires_at=row.expires_at, now=now or utc_now()
        )
        return refusal or row.tenant

    def quota(self, tenant: str) -> tuple[int, int]:
        """(quota, used) in bytes; used counts uploads in progress and kept."""
        with self._session() as session:
            row = session.get(TenantRow, tenant)
            if row is None:
                raise UnknownTenantError(tenant)
            used = session.exec(
                select(func.coalesce(func.sum(UploadRow.declared_size_bytes), 0)).where(
                    UploadRow.tenant == tenant,
                    col(UploadRow.state).in_([s.value for s in ACTIVE_STATES]),
                )
            ).one()
            return row.quota_bytes, int(used)

    # -- uploads ---------------------------------------------------------------------------

    def add_upload(self, row: UploadRow) -> None:
        with self._session() as session:
            session.add(row)

    def upload(self, slide_id: UUID) -> UploadRow | None:
        with self._session() as session:
            return session.get(UploadRow, slide_id)

    def upload_by_key(self, object_key: str) -> UploadRow | None:
        with self._session() as session:
            return session.exec(select(UploadRow).where(UploadRow.object_key == object_key)).first()

    def _update(self, slide_id: UUID, **values: object) -> None:
        with self._session() as session:
            session.execute(
                update(UploadRow)
                .where(col(UploadRow.slide_id) == slide_id)
                .values(updated_at=utc_now(), **values)
            )

    def record_created(self, slide_id: UUID, tus_id: str) -> None:
        self._update(slide_id, tus_id=tus_id)

    def record_progress(self, slide_id: UUID, received_bytes: int) -> None:
        with self._session() as session:
            # Progress hooks may arrive out of order; never move backwards.
            session.execute(
                update(UploadRow)
                .where(
                    col(UploadRow.slide_id) == slide_id,
                    col(UploadRow.received_bytes) < received_bytes,
                )
                .values(received_bytes=received_bytes, updated_at=utc_now())
            )

    def claim(self, slide_id: UUID, *, lease: timedelta) -> UploadRow | None:
        """Take the right to finalize this upload for ``lease``; ``None`` if someone holds it,
        or if there is nothing left to do. Works across replicas (one UPDATE ... WHERE)."""
        now = utc_now()
        with self._session() as session:
            result = session.execute(
                update(UploadRow)
                .where(
                    col(UploadRow.slide_id) == slide_id,
                    col(UploadRow.state).in_([UploadState.RECEIVING, UploadState.PUBLISHING]),
                    or_(col(UploadRow.lease_until).is_(None), col(UploadRow.lease_until) < now),
                )
                .values(lease_until=now + lease)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                return None
            return session.get(UploadRow, slide_id)

    def count_verify_attempt(self, slide_id: UUID) -> int:
        """Record that a verification begins; the number of attempts begun, this one included.
        Committed before the work, so an attempt whose process dies is counted all the same."""
        with self._session() as session:
            session.execute(
                update(UploadRow)
                .where(col(UploadRow.slide_id) == slide_id)
                .values(verify_attempts=col(UploadRow.verify_attempts) + 1, updated_at=utc_now())
            )
            attempts = session.exec(
                select(UploadRow.verify_attempts).where(UploadRow.slide_id == slide_id)
            ).one()
            return int(attempts)

    def renew(self, slide_id: UUID, *, lease: timedelta) -> None:
        self._update(slide_id, lease_until=utc_now() + lease)

    def release(self, slide_id: UUID) -> None:
        self._update(slide_id, lease_until=None)

    def begin_publishing(
        self,
        slide_id: UUID,
        *,
        event_id: UUID,
        mark: PublishMark,
        verified_sha256: str,
        container_format: str,
        finished_at: datetime,
    ) -> None:
        self._update(
            slide_id,
            state=UploadState.PUBLISHING.value,
            event_id=event_id,
            publish_partition=mark.partition,
            publish_from_offset=mark.from_offset,
            verified_sha256=verified_sha256,
            container_format=container_format,
            finished_at=finished_at,
        )

    def mark_published(self, slide_id: UUID) -> None:
        self._update(slide_id, state=UploadState.PUBLISHED.value, lease_until=None)

    def end(
        self, slide_id: UUID, state: UploadState, *, reason: str, detail: str, sha256: str | None
    ) -> None:
        self._update(
            slide_id,
            state=state.value,
            reason=reason,
            detail=detail,
            verified_sha256=sha256,
            finished_at=utc_now(),
            lease_until=None,
        )

    def cancel_if_receiving(self, slide_id: UUID, *, detail: str) -> None:
        """A client's cancellation, only while the upload is still receiving: one conditional
        UPDATE, so a reconciler's expiry (which terminates through tusd and so also fires this
        hook) or a finalize written meanwhile is never overwritten."""
        with self._session() as session:
            session.execute(
                update(UploadRow)
                .where(
                    col(UploadRow.slide_id) == slide_id,
                    col(UploadRow.state) == UploadState.RECEIVING.value,
                )
                .values(
                    state=UploadState.TERMINATED.value,
                    reason="terminated",
                    detail=detail,
                    verified_sha256=None,
                    finished_at=utc_now(),
                    lease_until=None,
                    updated_at=utc_now(),
                )
            )

    def unfinished(self) -> list[UploadRow]:
        with self._session() as session:
            query = select(UploadRow).where(
                col(UploadRow.state).in_([UploadState.RECEIVING, UploadState.PUBLISHING])
            )
            return list(session.exec(query))

    # -- batches ---------------------------------------------------------------------------

    def create_batch(self, tenant: str, rows: Sequence[ManifestRow]) -> UUID:
        batch_id = uuid4()
        with self._session() as session:
            session.add(BatchRow(batch_id=batch_id, tenant=tenant, row_count=len(rows)))
            session.flush()
            for row in rows:
                session.add(
                    BatchItemRow(
                        batch_id=batch_id,
                        filename=row.filename,
                        sha256=row.sha256,
                        case_id=row.case_id,
                        specimen_id=row.specimen_id,
                        species=row.species,
                        organ=row.organ,
                        stain=row.stain,
                        extra_json=json.dumps(row.extra, sort_keys=True),
                    )
                )
        return batch_id

    def batch(self, batch_id: UUID) -> BatchRow | None:
        with self._session() as session:
            return session.get(BatchRow, batch_id)

    def batch_items(self, batch_id: UUID) -> list[BatchItemRow]:
        with self._session() as session:
            query = select(BatchItemRow).where(BatchItemRow.batch_id == batch_id)
            return list(session.exec(query))

    def batch_item(self, batch_id: UUID, filename: str) -> BatchItemRow | None:
        with self._session() as session:
            return session.get(BatchItemRow, (batch_id, filename))

    def batch_uploads(self, batch_id: UUID) -> list[UploadRow]:
        with self._session() as session:
            query = select(UploadRow).where(UploadRow.batch_id == batch_id)
            return list(session.exec(query))

    # -- fixes ------------------------------------------------------------------------------

    def request_fix(self, row: SlideFixRow) -> SlideFixRow:
        """The slide's fix: ``row`` stored, or the one recorded before (a slide is fixed once)."""
        try:
            with self._session() as session:
                existing = session.get(SlideFixRow, row.slide_id)
                if existing is not None:
                    return existing
                session.add(row)
            return row
        except IntegrityError:  # another replica stored the slide's fix first
            with self._session() as session:
                found = session.get(SlideFixRow, row.slide_id)
                assert found is not None
                return found

    def mark_fix_published(self, slide_id: UUID) -> None:
        with self._session() as session:
            row = session.get(SlideFixRow, slide_id)
            if row is not None and row.published_at is None:
                row.published_at = utc_now()
