"""The deid workflow end to end on in-memory ports: real slides, real library, SQLite records.

The integration tests run the same paths through Kafka, MinIO and PostgreSQL; these pin the
decisions quickly.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO
from uuid import UUID, uuid4

import pytest
from faststream.exceptions import AckMessage
from sqlalchemy import text
from sqlmodel import Session, select

from slidestream_contracts.events import (
    ObjectRef,
    SlideDeidentifiedV1,
    SlideFormat,
    SlideRejectedV1,
    SlideStatusV1,
)
from slidestream_contracts.states import SlideState, Step
from slidestream_deid.adapters.tables import AuditRow, ProcessedRow, RetentionRow, VaultRow
from slidestream_deid.errors import DeidPoisonError
from slidestream_platform.delivery import DeliveryPolicy, RetryPolicy
from slidestream_platform.errors import CrashLoopError, RetryableError, ScratchSpaceError
from slidestream_platform.metrics import ServiceMetrics
from slidestream_platform.objectstore.ranged import RANGE_BLOCK_BYTES
from slidestream_samples import TOKENS
from slidestream_samples.aperio import APERIO_SCANNER_MODEL, write_svs
from slidestream_wsi.deid import DeidPolicy, PatchedDeidResult
from slidestream_wsi.errors import CorruptSlideError
from slidestream_wsi.pseudonyms import pseudonym
from slidestream_wsi.scan import scan_bytes_for_tokens
from slidestream_wsi.source import SlideSource
from tests.support.deid_harness import MANIFEST, TENANT, CountingTools, Harness
from tests.support.delivery import CountingSleep, RecordingSink, consumed
from tests.support.fakes import MemoryStore


def truncated_copy(source: Path, target: Path) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    return target


async def test_planted_svs_is_deidentified_recorded_and_published(
    harness: Harness, planted_svs: Path, tmp_path: Path
) -> None:
    event = harness.upload(planted_svs)
    await harness.workflow.on_uploaded(event)

    [(deid, deid_id), (status, status_id)] = harness.publisher.sent
    assert isinstance(deid, SlideDeidentifiedV1) and isinstance(status, SlideStatusV1)
    assert status.state is SlideState.DEIDENTIFIED and deid_id != status_id
    assert (deid.format, deid.vendor, deid.level_count) == ("aperio_svs", "aperio", 3)
    assert (deid.width_px, deid.height_px) == (2048, 1536)
    assert deid.mpp_x == pytest.approx(0.499) and deid.objective_power == 20
    # The model the output still states (ScannerType), never the unit's ScanScope ID.
    assert deid.scanner_model == APERIO_SCANNER_MODEL
    key = harness.settings.pseudonym_key()
    assert deid.pseudonyms == {
        "case": pseudonym(key, TENANT, "case", TOKENS["accession"]),
        "specimen": pseudonym(key, TENANT, "specimen", TOKENS["specimen"]),
        "patient": pseudonym(key, TENANT, "patient", TOKENS["patient_id"]),
    }
    assert {"label", "macro"} <= set(deid.audit.removed_images)
    assert "aperio.Filename" in deid.audit.removed_fields
    assert deid.audit.key_version == 1 and "slidestream-wsi" in deid.audit.software_version

    [artefact] = deid.artefacts
    assert artefact.key == f"{TENANT}/{event.slide_id}/slide.svs"
    stored = harness.deidentified_objects(event.slide_id)
    assert list(stored) == [artefact.key]
    # Composed in the store from the original plus patches, not uploaded from scratch.
    assert harness.store.composes == [("deidentified", artefact.key)]
    output = tmp_path / "output.svs"
    output.write_bytes(stored[artefact.key])
    assert hashlib.sha256(output.read_bytes()).hexdigest() == artefact.sha256
    assert scan_bytes_for_tokens(output, list(TOKENS.values())) == []

    # Names, never values, in the audit trail; the vault holds the mapping, encrypted: the
    # stored columns show no identifier, and the vault key gives each back.
    with Session(harness.engine) as session:
        audit = session.exec(select(AuditRow)).one()
    audit_text = audit.model_dump_json()
    assert not [token for token in TOKENS.values() if token.lower() in audit_text.lower()]
    with harness.engine.connect() as connection:
        stored_vault = connection.execute(text("SELECT * FROM deid_pseudonym_vault")).all()
    assert len(stored_vault) == 3
    stored_text = repr(stored_vault).lower()
    assert not [token for token in TOKENS.values() if token.lower() in stored_text]
    originals = {
        (entry.role, entry.original_id, entry.pseudonym)
        for pseudonym in deid.pseudonyms.values()
        for entry in harness.records.originals_of(TENANT, pseudonym)
    }
    assert originals == {
        (role, original, deid.pseudonyms[role])
        for role, original in (
            ("case", TOKENS["accession"]),
            ("specimen", TOKENS["specimen"]),
            ("patient", TOKENS["patient_id"]),
        )
    }
    # The events carry no identifier either.
    published = deid.model_dump_json() + status.model_dump_json()
    assert not [token for token in TOKENS.values() if token in published]
    assert harness.count(RetentionRow, event.slide_id) == 1


async def test_a_crash_between_publishing_and_recording_it_publishes_the_decision_once(
    harness: Harness, planted_svs: Path
) -> None:
    event = harness.upload(planted_svs)
    await harness.workflow.on_uploaded(event)
    [(_, deidentified_id), (status, status_id)] = harness.publisher.sent
    assert deidentified_id is not None and status_id is not None
    # As if the process died after Kafka acknowledged the events, before "published" was
    # recorded: the offset was not committed, so the event comes again.
    with Session(harness.engine) as session:
        row = session.exec(select(ProcessedRow)).one()
        row.published_at = None
        session.add(row)
        session.commit()
    harness.verifier.already_out.add(deidentified_id)
    harness.publisher.sent.clear()

    await harness.workflow.on_uploaded(event)

    assert harness.tools.deidentify_calls == 1
    assert harness.verifier.checked == [deidentified_id]
    assert harness.publisher.sent == [(status, status_id)]  # statuses are idempotent
    with Session(harness.engine) as session:
        assert session.exec(select(ProcessedRow)).one().published_at is not None
    await harness.workflow.on_uploaded(event)
    assert len(harness.publisher.sent) == 1


async def test_a_redelivery_after_publication_publishes_nothing_and_redoes_no_work(
    harness: Harness, planted_svs: Path
) -> None:
    event = harness.upload(planted_svs)
    await harness.workflow.on_uploaded(event)
    first = list(harness.publisher.sent)
    stored = harness.deidentified_objects(event.slide_id)

    await harness.workflow.on_uploaded(event)

    assert harness.tools.deidentify_calls == 1
    assert harness.publisher.sent == first and harness.verifier.checked == []
    assert harness.deidentified_objects(event.slide_id) == stored
    for table in (ProcessedRow, AuditRow, RetentionRow):
        assert harness.count(table, event.slide_id) == 1
    assert harness.count(VaultRow) == 3


async def test_identifier_hidden_in_tile_bytes_is_rejected_and_nothing_leaves(
    harness: Harness, tmp_path: Path
) -> None:
    case_id = "CASE-HIDDEN-4471-ZQ"
    slide = write_svs(tmp_path / "hidden.svs", 1024, 768, hidden_text=f"case {case_id}")
    event = harness.upload(slide, manifest={**MANIFEST, "case_id": case_id})
    await harness.workflow.on_uploaded(event)

    [(rejected, _), (status, _)] = harness.publisher.sent
    assert isinstance(rejected, SlideRejectedV1) and rejected.reason == "phi-residual"
    assert isinstance(status, SlideStatusV1) and status.state is SlideState.REJECTED
    assert rejected.detail.startswith("1 residual finding(s) in bytes: bytes:slide.svs@")
    assert case_id not in rejected.detail
    # The gate ran before the compose: nothing was even started outside quarantine.
    assert harness.store.composes == []
    assert harness.deidentified_objects(event.slide_id) == {}
    assert harness.count(AuditRow) == 0 and harness.count(VaultRow) == 0
    with Session(harness.engine) as session:
        processed = session.exec(select(ProcessedRow)).one()
    assert (processed.outcome, processed.reason) == ("rejected", "phi-residual")


async def test_identifier_in_a_kept_metadata_field_is_rejected(
    harness: Harness, tmp_path: Path
) -> None:
    # AppMag is kept when numeric; a case id that is a number shows up there.
    slide = write_svs(tmp_path / "numeric.svs", 1024, 768, pairs=("AppMag = 40", "MPP = 0.25"))
    event = harness.upload(slide, manifest={**MANIFEST, "case_id": "0.25"})
    await harness.workflow.on_uploaded(event)
    [(rejected, _), _] = harness.publisher.sent
    assert isinstance(rejected, SlideRejectedV1)
    assert "metadata:slide.svs:" in rejected.detail


def dead_letters_through(harness: Harness) -> tuple[DeliveryPolicy, RecordingSink]:
    """The delivery middleware as deid's main wires it: the workflow's dead-letter hook."""
    sink = RecordingSink()
    policy = DeliveryPolicy(
        service="deid",
        step=Step.DEID,
        retry=RetryPolicy(max_attempts=2, backoff_initial_s=1.0, backoff_max_s=1.0),
        metrics=ServiceMetrics(),
        sink=sink,  # type: ignore[arg-type]
        sleep=CountingSleep(),
        dead_letter_hooks=[harness.workflow.on_dead_letter],
    )
    return policy, sink


def retained_keys(harness: Harness, slide_id: UUID) -> list[str]:
    with Session(harness.engine) as session:
        row = session.get(RetentionRow, slide_id)
    return [] if row is None else list(json.loads(row.keys_json))


async def test_corrupt_slide_is_poison_and_its_original_is_scheduled_for_deletion(
    harness: Harness, planted_svs: Path, tmp_path: Path
) -> None:
    event = harness.upload(truncated_copy(planted_svs, tmp_path / "truncated.svs"))
    with pytest.raises(DeidPoisonError) as raised:
        await harness.workflow.on_uploaded(event)
    assert raised.value.reason in {"truncated-slide", "corrupt-slide"}
    assert harness.publisher.sent == []
    assert harness.count(ProcessedRow) == 0

    policy, sink = dead_letters_through(harness)
    message = consumed(body=event.model_dump_json().encode())
    with pytest.raises(AckMessage):
        await policy.handle_failure(message, raised.value)
    assert len(sink.dead_letters) == 1
    assert retained_keys(harness, event.slide_id) == [
        event.original.key,
        f"{event.original.key}.info",
        event.manifest.key if event.manifest else "",
    ]


async def test_a_slide_dead_lettered_after_its_retries_leaves_quarantine_too(
    harness: Harness, planted_svs: Path
) -> None:
    event = harness.upload(planted_svs)
    policy, sink = dead_letters_through(harness)
    message = consumed(body=event.model_dump_json().encode())
    changing = RetryableError("the original changed while it was being read")
    with pytest.raises(RetryableError):
        await policy.handle_failure(message, changing)
    assert harness.count(RetentionRow) == 0  # not while it is retried
    with pytest.raises(AckMessage):
        await policy.handle_failure(message, changing)
    assert [r.error_reason for r in sink.dead_letters] == ["transient"]
    assert harness.count(RetentionRow, event.slide_id) == 1

    with Session(harness.engine) as session:  # due: the sweep deletes it like any other
        row = session.get(RetentionRow, event.slide_id)
        assert row is not None
        row.delete_after = row.delete_after.replace(year=2000)
        session.add(row)
        session.commit()
    await harness.workflow.sweep_retention()
    assert not [key for (bucket, key) in harness.store.objects if bucket == "quarantine"]


async def test_an_undecodable_message_keeps_the_retention_of_the_slide_it_names(
    harness: Harness, planted_svs: Path
) -> None:
    event = harness.upload(planted_svs)
    policy, _sink = dead_letters_through(harness)
    garbled = json.dumps({"slide_id": str(event.slide_id), "tenant": TENANT, "original": 3})
    message = consumed(slide_id=event.slide_id, body=garbled.encode())
    with pytest.raises(AckMessage):
        await policy.handle_failure(message, CrashLoopError("killed"))
    prefix = f"{TENANT}/{event.slide_id}"
    assert retained_keys(harness, event.slide_id) == [
        f"{prefix}/original",
        f"{prefix}/original.info",
        f"{prefix}/manifest.json",
    ]

    nameless = consumed(slide_id=uuid4(), body=b"not json")
    with pytest.raises(AckMessage):  # dead-lettered all the same; nothing to schedule
        await policy.handle_failure(nameless, CrashLoopError("killed"))
    assert harness.count(RetentionRow) == 1


async def test_a_zip_is_downloaded_only_when_scratch_holds_it_inflated(
    harness: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    member_bytes = 1024 * 1024
    archive = tmp_path / "series.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("series/1.dcm", random.Random(1).randbytes(member_bytes))
    uploaded = harness.upload(archive, manifest=None)
    size_bytes = uploaded.original.size_bytes
    # Room for the zip and an output of its size, not for its members beside them.
    free_bytes = 2 * size_bytes + member_bytes // 2

    def usage(_path: object) -> shutil._ntuple_diskusage:
        return shutil._ntuple_diskusage(100 * member_bytes, 0, free_bytes)

    monkeypatch.setattr(shutil, "disk_usage", usage)
    whole_reads: list[str] = []
    open_stream = harness.store.open_stream

    def recording(bucket: str, key: str, *, offset: int = 0, length: int | None = None) -> Any:
        if key == uploaded.original.key and length == size_bytes:
            whole_reads.append(key)
        return open_stream(bucket, key, offset=offset, length=length)

    monkeypatch.setattr(harness.store, "open_stream", recording)

    zipped_event = uploaded.model_copy(update={"container_format": SlideFormat.ZIP})
    with pytest.raises(ScratchSpaceError) as raised:
        await harness.workflow.on_uploaded(zipped_event)
    assert f"slide {uploaded.slide_id} needs" in str(raised.value)
    assert whole_reads == []  # sized from its central directory, never downloaded

    # The same bytes announced as one DICOM file need only twice their size: downloaded.
    single = uploaded.model_copy(update={"container_format": SlideFormat.DICOM})
    with pytest.raises(DeidPoisonError):  # random bytes are no DICOM series
        await harness.workflow.on_uploaded(single)
    assert whole_reads == [uploaded.original.key]


async def test_not_a_slide_and_wrong_checksum_and_foreign_bucket_are_poison(
    harness: Harness, planted_svs: Path, tmp_path: Path
) -> None:
    text = tmp_path / "notes.txt"
    text.write_bytes(b"II*\x00 not really a tiff" * 10)
    with pytest.raises(DeidPoisonError):
        await harness.workflow.on_uploaded(harness.upload(text))

    event = harness.upload(planted_svs)
    forged = event.model_copy(
        update={"original": event.original.model_copy(update={"sha256": "1" * 64})}
    )
    with pytest.raises(DeidPoisonError) as raised:
        await harness.workflow.on_uploaded(forged)
    assert raised.value.reason == "checksum-mismatch"

    elsewhere = event.model_copy(
        update={"original": ObjectRef(**{**event.original.model_dump(), "bucket": "derived"})}
    )
    with pytest.raises(DeidPoisonError) as raised:
        await harness.workflow.on_uploaded(elsewhere)
    assert raised.value.reason == "unexpected-bucket"


async def test_retention_deletes_the_quarantine_objects_once_due(
    harness: Harness, planted_svs: Path
) -> None:
    event = harness.upload(planted_svs)
    await harness.workflow.on_uploaded(event)
    await harness.workflow.sweep_retention()
    assert ("quarantine", event.original.key) in harness.store.objects  # not due yet

    with Session(harness.engine) as session:
        row = session.get(RetentionRow, event.slide_id)
        assert row is not None
        row.delete_after = row.delete_after.replace(year=2000)
        session.add(row)
        session.commit()
    await harness.workflow.sweep_retention()

    prefix = f"{TENANT}/{event.slide_id}/"
    assert not [
        key
        for (bucket, key) in harness.store.objects
        if bucket == "quarantine" and key.startswith(prefix)
    ]
    assert harness.deidentified_objects(event.slide_id)  # the de-identified slide stays
    # A redelivery after deletion still answers from the recorded decision, without the original.
    await harness.workflow.on_uploaded(event)
    assert len(harness.publisher.sent) == 2 and harness.tools.deidentify_calls == 1


class _RangeFailingStore(MemoryStore):
    """Fails the original's ranged reads past its first block, as the store adapter reports a
    lost connection (a RetryableError)."""

    @contextmanager
    def open_stream(
        self, bucket: str, key: str, *, offset: int = 0, length: int | None = None
    ) -> Iterator[BinaryIO]:
        if offset > 0 and key.endswith("/original"):
            raise RetryableError("the store went away")
        with super().open_stream(bucket, key, offset=offset, length=length) as stream:
            yield stream


class _SwallowingTools(CountingTools):
    """Reads the original's last bytes and, like tifffile inside the library's parsers, reports
    a failed read as a broken slide."""

    def deidentify_as_patches(self, source: SlideSource, policy: DeidPolicy) -> PatchedDeidResult:
        try:
            with source.open() as reader:
                reader.seek(source.size_bytes - 16)
                reader.read(16)
        except Exception as error:
            raise CorruptSlideError("tifffile cannot parse the TIFF") from error
        return super().deidentify_as_patches(source, policy)


@pytest.mark.parametrize("swallowed", [False, True])
async def test_a_store_failure_while_reading_the_structure_is_retried_not_poison(
    harness: Harness, tmp_path: Path, swallowed: bool
) -> None:
    """A failed ranged GET is retried, also when a parser reported it as a corrupt slide."""
    slide = tmp_path / "large.svs"
    write_svs(slide, 24 * 256, 24 * 256, label_and_macro=True)
    assert slide.stat().st_size > 2 * RANGE_BLOCK_BYTES  # the structure pass reads past block 0
    failing = _RangeFailingStore(objects=harness.store.objects)
    harness.workflow._store = failing  # the same objects, served by a failing store
    if swallowed:
        harness.workflow._slides = _SwallowingTools()
    event = harness.upload(slide)
    with pytest.raises(RetryableError):
        await harness.workflow.on_uploaded(event)
    assert harness.publisher.sent == []
    assert harness.count(ProcessedRow) == 0


async def test_an_original_replaced_during_the_run_is_retried(
    harness: Harness, planted_svs: Path
) -> None:
    event = harness.upload(planted_svs)
    gate = harness.workflow._gate
    real_gate = gate.check_streamed

    def gate_then_replace(*args: Any, **kwargs: Any) -> Any:
        verdict = real_gate(*args, **kwargs)
        data = harness.store.objects[(event.original.bucket, event.original.key)]
        harness.store.put_bytes(event.original.bucket, event.original.key, data + b"!")
        return verdict

    gate.check_streamed = gate_then_replace  # type: ignore[method-assign]
    with pytest.raises(RetryableError):
        await harness.workflow.on_uploaded(event)
    assert harness.publisher.sent == []
