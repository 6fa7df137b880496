"""The deid service as a real process on the real stack: slides with planted PHI go in through
quarantine and ``slides.uploaded.v1``; de-identified slides, refusals and dead letters come out.

Tests in this module share one deid process (module fixture) and run in order.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from uuid import UUID

import openslide
import pytest
from sqlmodel import Session, select

from slidestream_contracts.events import (
    DeadLetterRecordV1,
    SlideDeidentifiedV1,
    SlideRejectedV1,
    SlideStatusV1,
    SlideUploadedV1,
)
from slidestream_contracts.topics import Topic
from slidestream_deid.adapters.repository import SqlDeidRecords
from slidestream_deid.adapters.slides import WsiSlideTools
from slidestream_deid.adapters.tables import AuditRow, ProcessedRow, RetentionRow, VaultRow
from slidestream_deid.adapters.vault_cipher import AesGcmVaultCipher
from slidestream_deid.settings import DeidSettings
from slidestream_deid.workflow import EVENT_ID_NAMESPACE, DeidWorkflow
from slidestream_platform.decisions import DecisionPublisher
from slidestream_samples import LAYOUT_MAKERS, SCANNER_MODEL_OF_LAYOUT, TOKENS
from slidestream_samples.aperio import write_svs
from slidestream_wsi.pseudonyms import PseudonymKey, pseudonym
from slidestream_wsi.scan import scan_bytes_for_tokens
from tests.support.deid import (
    DEIDENTIFIED,
    QUARANTINE,
    RETENTION_S,
    Deployment,
    partition_of,
    put_slide,
    slide_id_on_partition,
)
from tests.support.deid_harness import MANIFEST
from tests.support.openslide import OPENSLIDE_FIXTURES, openslide_fixtures  # noqa: F401

pytestmark = pytest.mark.integration

DEID = Topic.SLIDES_DEIDENTIFIED.value
REJECTED = Topic.SLIDES_REJECTED.value
STATUS = Topic.SLIDES_STATUS.value
DLQ = "dlq.deid.v1"

PLANTED = list(dict.fromkeys([*TOKENS.values(), f"{TOKENS['filename']}.svs"]))


async def publish(deployment: Deployment, event: SlideUploadedV1) -> None:
    await deployment.bus.publisher.publish(event)


def statuses(deployment: Deployment, slide_id: UUID) -> list[str]:
    """The states deid published for the slide (the stack's convert and qc services add their
    own after ``deidentified``; they are not deid's to assert)."""
    return [
        r.value["state"]
        for r in deployment.collector.of(slide_id, STATUS)
        if r.value.get("step") == "deid"
    ]


async def wait_decided(deployment: Deployment, slide_id: UUID, timeout_s: float = 180.0) -> None:
    """Until deid published a terminal outcome for the slide (deidentified, rejected, failed)."""

    def decided() -> bool:
        return any(
            state in ("deidentified", "rejected", "failed:deid")
            for state in statuses(deployment, slide_id)
        )

    await deployment.collector.wait_for(decided, timeout_s=timeout_s, what=f"slide {slide_id}")


def download(deployment: Deployment, key: str, target: Path) -> Path:
    with deployment.store.open_stream(DEIDENTIFIED, key) as stream, target.open("wb") as out:
        shutil.copyfileobj(stream, out)
    return target


def deidentified_keys(deployment: Deployment, slide_id: UUID) -> list[str]:
    prefix = f"{deployment.tenant}/{slide_id}/"
    return [o.key for o in deployment.store.list(DEIDENTIFIED, prefix)]


def rows(deployment: Deployment, table: type[object], slide_id: UUID) -> list[object]:
    with Session(deployment.engine) as session:
        query = select(table).where(table.slide_id == slide_id)  # type: ignore[attr-defined]
        return list(session.exec(query))


def planted_upload(directory: Path, layout: str) -> Path:
    slide = LAYOUT_MAKERS[layout](directory)
    if layout != "dicom":
        return Path(slide.path)
    archive = directory / "series"
    return Path(shutil.make_archive(str(archive), "zip", slide.path))


def planted_dimensions(slide: Path, layout: str) -> tuple[int, int]:
    """Level 0's size as an independent reader sees the original (the samples share 2048 x 1536
    except the Leica and Ventana ones, whose layouts need other sizes)."""
    if layout in ("dicom", "ome_tiff"):  # OpenSlide reads neither as these samples are built
        return (2048, 1536)
    with openslide.OpenSlide(slide) as original:
        width, height = original.dimensions
    return (int(width), int(height))


@pytest.mark.parametrize("layout", sorted(LAYOUT_MAKERS))
async def test_planted_layouts_leave_quarantine_without_identity(
    deployment: Deployment, tmp_path: Path, layout: str
) -> None:
    slide = planted_upload(tmp_path, layout)
    event = put_slide(
        deployment.store,
        tenant=deployment.tenant,
        slide=slide,
        manifest=MANIFEST,
        client_filename=f"{TOKENS['filename']}.svs",
    )
    await publish(deployment, event)
    await wait_decided(deployment, event.slide_id)

    [record] = deployment.collector.of(event.slide_id, DEID)
    deid = SlideDeidentifiedV1.model_validate(record.value)
    assert record.headers["ce_source"] == "/slidestream/deid"
    assert statuses(deployment, event.slide_id) == ["deidentified"]
    # The event describes the scanned image's level 0 (for Leica, the main image, not the
    # whole-collection canvas OpenSlide reports).
    assert (deid.width_px, deid.height_px) == (2048, 1536)
    assert deid.level_count >= 2
    # The scanner model the output still states (the sparse description of in-place outputs).
    assert deid.scanner_model == SCANNER_MODEL_OF_LAYOUT[layout]
    assert deid.audit.removed_images  # label and macro/overview
    assert deid.audit.key_version == 1
    key = PseudonymKey(1, deployment.key_file.read_bytes().rstrip(b"\n"))
    assert deid.pseudonyms["case"] == pseudonym(key, deployment.tenant, "case", TOKENS["accession"])
    assert set(deid.pseudonyms) == {"case", "specimen", "patient"}

    # Every artefact is where the event says, whole, and free of every planted token.
    assert sorted(ref.key for ref in deid.artefacts) == deidentified_keys(
        deployment, event.slide_id
    )
    outputs = tmp_path / "out"
    outputs.mkdir()
    for ref in deid.artefacts:
        assert ref.key.startswith(f"{deployment.tenant}/{event.slide_id}/")
        local = download(deployment, ref.key, outputs / ref.key.rsplit("/", 1)[-1])
        assert local.stat().st_size == ref.size_bytes
        assert scan_bytes_for_tokens(local, PLANTED) == []
    first = outputs / deid.artefacts[0].key.rsplit("/", 1)[-1]
    if layout not in ("dicom", "ome_tiff"):
        with openslide.OpenSlide(first) as opened:
            assert opened.dimensions == planted_dimensions(slide, layout)
            assert not {"label", "macro"} & set(opened.associated_images)

    # The audit names what went, never what it said; events carry no identifier either.
    [audit] = rows(deployment, AuditRow, event.slide_id)
    assert isinstance(audit, AuditRow)
    text = audit.model_dump_json().lower() + json.dumps(record.value).lower()
    assert [token for token in PLANTED if token.lower() in text] == []
    assert audit.key_version == 1 and "slidestream-wsi" in audit.software_version


def test_the_vault_holds_one_row_per_identifier_whatever_the_slide_count(
    deployment: Deployment,
) -> None:
    with Session(deployment.engine) as session:
        query = select(VaultRow).where(VaultRow.tenant == deployment.tenant)
        vault = list(session.exec(query))
    # Encrypted in PostgreSQL: no plaintext column, no identifier in the stored bytes.
    assert [row.original_id for row in vault] == [None] * len(vault)
    stored = b"".join(row.original_sealed or b"" for row in vault)
    assert [token for token in TOKENS.values() if token.encode() in stored] == []
    records = deployment.records()
    originals = [
        entry for row in vault for entry in records.originals_of(row.tenant, row.pseudonym)
    ]
    assert sorted((entry.role, entry.original_id, entry.key_version) for entry in originals) == [
        ("case", TOKENS["accession"], 1),
        ("patient", TOKENS["patient_id"], 1),
        ("specimen", TOKENS["specimen"], 1),
    ]


async def test_identifier_hidden_in_tile_bytes_is_rejected_and_nothing_leaves_quarantine(
    deployment: Deployment, tmp_path: Path
) -> None:
    case_id = "CASE-ZQ-55121-HIDDEN"
    slide = write_svs(tmp_path / "hidden.svs", 1024, 768, hidden_text=f"case {case_id}")
    event = put_slide(
        deployment.store,
        tenant=deployment.tenant,
        slide=slide,
        manifest={**MANIFEST, "case_id": case_id},
    )
    await publish(deployment, event)
    await wait_decided(deployment, event.slide_id)

    [record] = deployment.collector.of(event.slide_id, REJECTED)
    rejected = SlideRejectedV1.model_validate(record.value)
    assert (rejected.step, rejected.reason) == ("deid", "phi-residual")
    assert case_id not in rejected.detail and "bytes:slide.svs@" in rejected.detail
    assert statuses(deployment, event.slide_id) == ["rejected"]
    assert deployment.collector.of(event.slide_id, DEID) == []
    assert deidentified_keys(deployment, event.slide_id) == []
    assert rows(deployment, AuditRow, event.slide_id) == []
    assert deployment.store.stat(QUARANTINE, event.original.key) is not None  # kept for review


async def test_corrupt_slide_is_dead_lettered_and_the_next_slide_on_its_partition_completes(
    deployment: Deployment, tmp_path: Path
) -> None:
    good_source = write_svs(tmp_path / "good.svs", 1024, 768)
    corrupt = tmp_path / "corrupt.svs"
    corrupt.write_bytes(good_source.read_bytes()[:40_000])
    bad = put_slide(deployment.store, tenant=deployment.tenant, slide=corrupt, manifest=None)
    partition = partition_of(bad.slide_id, deployment.partitions)
    good = put_slide(
        deployment.store,
        tenant=deployment.tenant,
        slide=good_source,
        manifest=None,
        slide_id=slide_id_on_partition(partition, deployment.partitions),
    )
    await publish(deployment, bad)
    await publish(deployment, good)
    await wait_decided(deployment, bad.slide_id)
    await wait_decided(deployment, good.slide_id)

    [dead] = deployment.collector.of(bad.slide_id, DLQ)
    record = DeadLetterRecordV1.model_validate(dead.value)
    assert record.slide_id == bad.slide_id and record.original_topic == "slides.uploaded.v1"
    assert record.error_reason in {"truncated-slide", "corrupt-slide"}
    assert record.attempts == 1  # poison: no retries
    [failed] = deployment.collector.of(bad.slide_id, STATUS)
    assert SlideStatusV1.model_validate(failed.value).state == "failed:deid"
    assert statuses(deployment, good.slide_id) == ["deidentified"]
    # Without a manifest, the slide still gets a pseudonym (from its id) but no vault row.
    [deid] = deployment.collector.of(good.slide_id, DEID)
    assert SlideDeidentifiedV1.model_validate(deid.value).pseudonyms == {}


async def test_a_redelivery_is_answered_from_the_record_without_new_events_rows_or_keys(
    deployment: Deployment, tmp_path: Path
) -> None:
    slide = write_svs(tmp_path / "again.svs", 1024, 768)
    event = put_slide(deployment.store, tenant=deployment.tenant, slide=slide, manifest=MANIFEST)
    await publish(deployment, event)
    await wait_decided(deployment, event.slide_id)
    keys = deidentified_keys(deployment, event.slide_id)

    await publish(deployment, event)  # what Kafka does after a crash before the commit
    await deployment.collector.wait_for(
        lambda: any(
            str(event.slide_id) in line and "already decided and announced" in line
            for line in deployment.process.logs().splitlines()
        ),
        what="the redelivery to be consumed",
    )
    await deployment.collector.settle()

    assert len(deployment.collector.of(event.slide_id, DEID)) == 1
    assert deidentified_keys(deployment, event.slide_id) == keys
    for table in (ProcessedRow, AuditRow, RetentionRow):
        assert len(rows(deployment, table, event.slide_id)) == 1
    logs = deployment.process.logs()
    done = [
        line
        for line in logs.splitlines()
        if str(event.slide_id) in line and '"slide deidentified"' in line
    ]
    assert len(done) == 1  # the work ran once; the redelivery was answered from the record


@pytest.mark.parametrize("name", OPENSLIDE_FIXTURES)
async def test_openslide_fixtures_are_deidentified_or_cleanly_dead_lettered(
    deployment: Deployment,
    openslide_fixtures: Path,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
    name: str,
) -> None:
    source = openslide_fixtures / name
    event = put_slide(deployment.store, tenant=deployment.tenant, slide=source, manifest=None)
    await publish(deployment, event)
    await wait_decided(deployment, event.slide_id)
    await deployment.collector.settle(1.0)

    outcome = statuses(deployment, event.slide_id)
    if name in ("unreadable.svs", "unopenable.tiff"):
        assert outcome == ["failed:deid"]
        assert len(deployment.collector.of(event.slide_id, DLQ)) == 1
        assert deidentified_keys(deployment, event.slide_id) == []
        return
    assert outcome == ["deidentified"]
    [record] = deployment.collector.of(event.slide_id, DEID)
    deid = SlideDeidentifiedV1.model_validate(record.value)
    local = download(deployment, deid.artefacts[0].key, tmp_path / name)
    with openslide.OpenSlide(source) as before, openslide.OpenSlide(local) as after:
        assert after.dimensions == before.dimensions == (deid.width_px, deid.height_px)
        assert after.level_count == before.level_count
        region = (0, 0), 0, (min(16, before.dimensions[0]), min(16, before.dimensions[1]))
        assert after.read_region(*region).tobytes() == before.read_region(*region).tobytes()


async def test_quarantine_originals_are_deleted_after_the_retention(
    deployment: Deployment,
) -> None:
    decided = [
        r.key for r in deployment.collector.records if r.topic == STATUS and r.key is not None
    ]
    slide_ids = {UUID(key) for key in decided}
    assert slide_ids
    prefixes = [f"{deployment.tenant}/{slide_id}/" for slide_id in slide_ids]

    def left() -> list[str]:
        return [o.key for prefix in prefixes for o in deployment.store.list(QUARANTINE, prefix)]

    await deployment.collector.wait_for(
        lambda: not left(), timeout_s=RETENTION_S + 60, what="quarantine to empty"
    )
    # What left quarantine de-identified stays.
    assert any(deployment.store.list(DEIDENTIFIED, f"{deployment.tenant}/"))


def test_the_keys_never_reach_logs_or_events(deployment: Deployment) -> None:
    published = json.dumps([r.value for r in deployment.collector.records])
    for key_file in (deployment.key_file, deployment.vault_key_file):
        secret = key_file.read_bytes().strip().decode()
        assert secret not in deployment.process.logs()
        assert secret[:16] not in deployment.process.logs()
        assert secret[:16] not in published


async def test_a_crash_between_publishing_and_recording_it_publishes_once(
    deployment: Deployment, stack_env: dict[str, str], tmp_path: Path
) -> None:
    """The workflow in-process on the real Kafka and PostgreSQL, 'crashing' right after Kafka
    acknowledged the events; the retry finds the event after its mark and sends it no more."""
    slide = write_svs(tmp_path / "crash.svs", 1024, 768)
    event = put_slide(deployment.store, tenant=deployment.tenant, slide=slide, manifest=MANIFEST)
    settings = DeidSettings(
        kafka_bootstrap=stack_env["KAFKA_BOOTSTRAP"],
        s3_endpoint=stack_env["S3_ENDPOINT"],
        s3_access_key=stack_env["S3_ACCESS_KEY"],
        s3_secret_key=stack_env["S3_SECRET_KEY"],
        database_url=stack_env["POSTGRES_URL"],
        pseudonym_key_file=deployment.key_file,
        vault_key_file=deployment.vault_key_file,
        work_dir=tmp_path,
    )

    class CrashAfterPublishError(Exception):
        pass

    class CrashingRecords(SqlDeidRecords):
        def mark_published(self, slide_id: UUID, input_sha256: str) -> None:
            raise CrashAfterPublishError

    def workflow(records: SqlDeidRecords) -> DeidWorkflow:
        return DeidWorkflow(
            settings=settings,
            store=deployment.store,
            records=records,
            slides=WsiSlideTools(),
            decisions=DecisionPublisher.for_bus(deployment.bus, EVENT_ID_NAMESPACE),
            key=settings.pseudonym_key(),
        )

    with pytest.raises(CrashAfterPublishError):
        await workflow(
            CrashingRecords(deployment.engine, AesGcmVaultCipher(settings.vault_keys()))
        ).on_uploaded(event)
    await deployment.collector.wait_for(
        lambda: bool(deployment.collector.of(event.slide_id, DEID)), what="the first publication"
    )
    [row] = rows(deployment, ProcessedRow, event.slide_id)
    assert isinstance(row, ProcessedRow) and row.published_at is None

    await workflow(deployment.records()).on_uploaded(event)
    await deployment.collector.settle()

    [deidentified] = deployment.collector.of(event.slide_id, DEID)
    [row] = rows(deployment, ProcessedRow, event.slide_id)
    assert isinstance(row, ProcessedRow) and row.published_at is not None
    assert deidentified.headers["ce_id"] == str(
        DecisionPublisher.for_bus(deployment.bus, EVENT_ID_NAMESPACE).event_id(
            event.slide_id, event.original.sha256, DEID
        )
    )
    assert statuses(deployment, event.slide_id) == ["deidentified", "deidentified"]
