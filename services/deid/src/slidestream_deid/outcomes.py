"""What deid records and announces for a slide: the accepted or rejected events, the audit
entry, the vault rows, and when the original leaves quarantine (workflow step 5)."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from importlib.metadata import PackageNotFoundError, version

from slidestream_contracts.events import (
    DeidAuditSummary,
    ObjectRef,
    SlideDeidentifiedV1,
    SlideEvent,
    SlideRejectedV1,
    SlideStatusV1,
    SlideUploadedV1,
)
from slidestream_contracts.quarantine import tus_info_key
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
        return RetentionRow(
            slide_id=event.slide_id,
            tenant=event.tenant,
            bucket=self._settings.quarantine_bucket,
            keys_json=json.dumps(keys),
            delete_after=utc_now() + timedelta(seconds=self._settings.quarantine_retention_s),
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
