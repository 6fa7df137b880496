"""What deid records and announces for a slide: the accepted or rejected events, the audit
entry, the vault rows, and when the original leaves quarantine (workflow step 5) — for a
decided slide and for every dead-lettered one."""

from __future__ import annotations

import base64
import json
import logging
from datetime import timedelta
from importlib.metadata import PackageNotFoundError, version
from uuid import UUID

from pydantic import TypeAdapter, ValidationError

from slidestream_contracts.events import (
    DeadLetterRecordV1,
    DeidAuditSummary,
    ObjectRef,
    SlideDeidentifiedV1,
    SlideEvent,
    SlideRejectedV1,
    SlideStatusV1,
    SlideUploadedV1,
    TenantId,
)
from slidestream_contracts.quarantine import (
    MANIFEST_ARTEFACT,
    ORIGINAL_ARTEFACT,
    slide_object_key,
    tus_info_key,
)
from slidestream_contracts.states import SlideState, Step
from slidestream_deid.adapters.repository import DeidRecords
from slidestream_deid.adapters.slides import SlideProperties
from slidestream_deid.adapters.tables import AuditRow, Outcome, RetentionRow, utc_now
from slidestream_deid.domain.pseudonyms import Pseudonymisation
from slidestream_deid.domain.verdict import REASON_PHI_RESIDUAL, ResidualPhiVerdict
from slidestream_deid.settings import DeidSettings
from slidestream_platform.decisions import Decided
from slidestream_wsi.deid import DeidResult
from slidestream_wsi.pseudonyms import PseudonymKey

logger = logging.getLogger(__name__)
TENANT: TypeAdapter[str] = TypeAdapter(TenantId)


def software_version() -> str:
    """The versions that decide what de-identification does, for the audit trail."""

    def of(package: str) -> str:
        try:
            return version(package)
        except PackageNotFoundError:
            return "unknown"

    return f"slidestream-deid {of('slidestream-deid')}; slidestream-wsi {of('slidestream-wsi')}"


class DeidOutcomes:
    def __init__(self, settings: DeidSettings, records: DeidRecords, key: PseudonymKey) -> None:
        self._settings = settings
        self._records = records
        self._key = key
        self._software_version = software_version()

    def retention(self, event: SlideUploadedV1) -> RetentionRow:
        keys = [event.original.key, tus_info_key(event.original.key)]
        if event.manifest is not None:
            keys.append(event.manifest.key)
        return self._retention_row(event.slide_id, event.tenant, keys)

    def _retention_row(self, slide_id: UUID, tenant: str, keys: list[str]) -> RetentionRow:
        return RetentionRow(
            slide_id=slide_id,
            tenant=tenant,
            bucket=self._settings.quarantine_bucket,
            keys_json=json.dumps(keys),
            delete_after=utc_now() + timedelta(seconds=self._settings.quarantine_retention_s),
        )

    def dead_letter_retention(self, record: DeadLetterRecordV1) -> RetentionRow | None:
        """The retention of a dead-lettered slide's quarantine objects: the event's when it
        decodes and stays in quarantine, else those upload writes for its slide id and tenant
        (``<tenant>/<slide_id>/``); ``None`` when the message names neither."""
        body = base64.b64decode(record.payload_base64)
        try:
            event = SlideUploadedV1.model_validate_json(body)
        except ValidationError:
            event = None
        refs = [] if event is None else [event.original, event.manifest]
        if event is not None and all(
            ref is None or ref.bucket == self._settings.quarantine_bucket for ref in refs
        ):
            return self.retention(event)
        tenant = _tenant_of(body)
        if tenant is None or record.slide_id is None:
            return None
        original = slide_object_key(tenant, record.slide_id, ORIGINAL_ARTEFACT)
        manifest = slide_object_key(tenant, record.slide_id, MANIFEST_ARTEFACT)
        return self._retention_row(
            record.slide_id, tenant, [original, tus_info_key(original), manifest]
        )

    def rejected(self, event: SlideUploadedV1, verdict: ResidualPhiVerdict) -> Decided:
        detail = verdict.detail()
        logger.warning(
            "slide rejected: identity left after de-identification",
            extra={
                "slide_id": str(event.slide_id),
                "tenant": event.tenant,
                "reason": REASON_PHI_RESIDUAL,
                "findings": len(verdict.findings),
            },
        )
        events: list[SlideEvent] = [
            SlideRejectedV1(
                slide_id=event.slide_id,
                tenant=event.tenant,
                step=Step.DEID,
                reason=REASON_PHI_RESIDUAL,
                detail=detail,
            ),
            SlideStatusV1(
                slide_id=event.slide_id,
                tenant=event.tenant,
                state=SlideState.REJECTED,
                step=Step.DEID,
                reason=REASON_PHI_RESIDUAL,
                detail=detail,
            ),
        ]
        return Decided(
            events,
            {"outcome": Outcome.REJECTED.value, "reason": REASON_PHI_RESIDUAL},
            self._records.outcome_rows(audit=None, vault=(), retention=self.retention(event)),
        )

    def accepted(
        self,
        event: SlideUploadedV1,
        result: DeidResult,
        names: Pseudonymisation,
        artefacts: tuple[ObjectRef, ...],
        props: SlideProperties,
    ) -> Decided:
        width_px, height_px = max(result.levels, key=lambda wh: wh[0] * wh[1])
        summary = DeidAuditSummary(
            removed_fields=result.audit.removed_fields,
            removed_images=result.audit.removed_images,
            software_version=self._software_version,
            key_version=self._key.version,
        )
        deidentified = SlideDeidentifiedV1(
            slide_id=event.slide_id,
            tenant=event.tenant,
            artefacts=artefacts,
            format=result.format.value,
            vendor=props.vendor,
            width_px=width_px,
            height_px=height_px,
            level_count=len(result.levels),
            mpp_x=props.mpp_x,
            mpp_y=props.mpp_y,
            objective_power=props.objective_power,
            pseudonyms=names.by_role,
            audit=summary,
            scanner_model=props.scanner_model,
            declared=event.declared,
        )
        status = SlideStatusV1(
            slide_id=event.slide_id,
            tenant=event.tenant,
            occurred_at=deidentified.occurred_at,
            state=SlideState.DEIDENTIFIED,
            step=Step.DEID,
        )
        audit = AuditRow(
            slide_id=event.slide_id,
            input_sha256=event.original.sha256,
            tenant=event.tenant,
            slide_format=result.format.value,
            removed_fields_json=json.dumps(list(result.audit.removed_fields)),
            removed_images_json=json.dumps(list(result.audit.removed_images)),
            software_version=self._software_version,
            key_version=self._key.version,
            artefacts_json=json.dumps([ref.key for ref in artefacts]),
            bytes_rewritten=result.bytes_rewritten,
            output_bytes=result.output_bytes,
        )
        rows = self._records.outcome_rows(
            audit=audit, vault=names.entries, retention=self.retention(event)
        )
        return Decided((deidentified, status), {"outcome": Outcome.DEIDENTIFIED.value}, rows)


def _tenant_of(body: bytes) -> str | None:
    """The valid tenant of a message that does not decode as its event, if it names one."""
    try:
        decoded = json.loads(body)
        return TENANT.validate_python(decoded.get("tenant")) if isinstance(decoded, dict) else None
    except ValueError:  # not JSON, or no valid tenant (ValidationError is a ValueError)
        return None
