"""The convert workflow with in-memory ports: outputs, events, idempotency, poison input."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from uuid import uuid4

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine, create_engine
from sqlmodel import Session, select

from slidestream_contracts.events import (
    DeidAuditSummary,
    ObjectRef,
    SlideConvertedV1,
    SlideDeidentifiedV1,
    SlideFactsV1,
    SlideStatusV1,
)
from slidestream_contracts.states import SlideState
from slidestream_convert.adapters.tables import ConversionRow, metadata
from slidestream_convert.domain.inputs import EVENT_ID_NAMESPACE
from slidestream_convert.settings import ConvertSettings
from slidestream_convert.workflow import ConvertMetrics, ConvertPoisonError, ConvertWorkflow
from slidestream_platform.decisions import DecisionPublisher, SqlDecisionRecords
from slidestream_platform.errors import ChecksumMismatchError, InvalidEventError
from slidestream_wsi.convert import (
    ConversionOptions,
    ConversionResult,
    ConvertedLevelReport,
    DicomIdentity,
)
from slidestream_wsi.errors import CorruptSlideError
from tests.support.fakes import FakeVerifier, MemoryStore, RecordingPublisher

TENANT = "lab-a"


def sqlite_engine(tmp_path: Path) -> Engine:
    """The service's real decision table, on a SQLite file of the test's own."""
    engine = create_engine(f"sqlite:///{tmp_path / 'decisions.db'}")
    metadata.create_all(engine)
    return engine


@dataclass
class FakeConverter:
    """Writes small deterministic files where the real converter would write a pyramid."""

    calls: list[tuple[Sequence[Path], DicomIdentity, ConversionOptions]] = field(
        default_factory=list
    )
    error: Exception | None = None

    def convert(
        self,
        sources: Sequence[Path],
        out_dir: Path,
        identity: DicomIdentity,
        options: ConversionOptions,
        progress: object = None,
    ) -> ConversionResult:
        self.calls.append((sources, identity, options))
        if self.error is not None:
            raise self.error
        source_bytes = b"".join(p.read_bytes() for p in sources)
        dicom: list[Path] = []
        if "dicom" in options.outputs:
            for name in ("level-0.dcm", "level-1.dcm", "thumbnail.dcm"):
                (out_dir / name).write_bytes(name.encode() + source_bytes)
                dicom.append(out_dir / name)
        tiff = None
        if "tiff" in options.outputs:
            tiff = out_dir / "slide.ome.tiff"
            tiff.write_bytes(b"II*\x00" + source_bytes)
        levels = (
            ConvertedLevelReport(0, 1024, 768, 256, 0.25, 0.25, "jpeg", True, False, "a" * 64),
            ConvertedLevelReport(1, 512, 384, 256, 0.5, 0.5, "jpeg", False, True, None),
        )
        return ConversionResult(
            dicom_files=tuple(dicom),
            tiff_file=tiff,
            levels=levels,
            provenance={"source_format": "aperio-svs"},
            warnings=(),
        )


def deidentified_event(store: MemoryStore, data: bytes = b"slide bytes") -> SlideDeidentifiedV1:
    slide_id = uuid4()
    key = f"{TENANT}/{slide_id}/slide.svs"
    store.objects[("deidentified", key)] = data
    return SlideDeidentifiedV1(
        slide_id=slide_id,
        tenant=TENANT,
        artefacts=(
            ObjectRef(
                bucket="deidentified",
                key=key,
                sha256=hashlib.sha256(data).hexdigest(),
                size_bytes=len(data),
            ),
        ),
        format="aperio-svs",
        width_px=1024,
        height_px=768,
        level_count=1,
        pseudonyms={"case": "CASE-PSEUDO", "specimen": "SPEC-PSEUDO"},
        audit=DeidAuditSummary(software_version="test", key_version=1),
    )


@dataclass
class Harness:
    workflow: ConvertWorkflow
    store: MemoryStore
    records: SqlDecisionRecords[ConversionRow]
    engine: Engine
    converter: FakeConverter
    publisher: RecordingPublisher
    verifier: FakeVerifier


def harness(tmp_path: Path, **settings: object) -> Harness:
    engine = sqlite_engine(tmp_path)
    store, converter = MemoryStore(), FakeConverter()
    records = SqlDecisionRecords(engine, ConversionRow)
    publisher, verifier = RecordingPublisher(), FakeVerifier()
    workflow = ConvertWorkflow(
        settings=ConvertSettings(work_dir=tmp_path, **settings),  # type: ignore[arg-type]
        store=store,
        records=records,
        converter=converter,
        decisions=DecisionPublisher(publisher, verifier, EVENT_ID_NAMESPACE),
        metrics=ConvertMetrics.register(CollectorRegistry()),
    )
    return Harness(workflow, store, records, engine, converter, publisher, verifier)


async def test_outputs_land_under_deterministic_keys_and_events_describe_them(
    tmp_path: Path,
) -> None:
    h = harness(tmp_path)
    event = deidentified_event(h.store)
    await h.workflow.on_deidentified(event)

    prefix = f"{TENANT}/{event.slide_id}/"
    written = sorted(k for (b, k) in h.store.objects if b == "converted")
    assert written == [
        prefix + "dicom/level-0.dcm",
        prefix + "dicom/level-1.dcm",
        prefix + "dicom/thumbnail.dcm",
        prefix + "provenance.json",
        prefix + "tiff/slide.ome.tiff",
    ]
    [(converted, converted_id), (status, status_id)] = h.publisher.sent
    assert isinstance(converted, SlideConvertedV1)
    assert [r.key for r in converted.dicom] == written[:3]
    assert converted.tiff is not None and converted.tiff.key == written[4]
    assert [lv.lossless_copy for lv in converted.levels] == [True, False]
    assert converted.levels[0].pixel_proof_sha256 == "a" * 64
    assert isinstance(status, SlideStatusV1) and status.state == SlideState.CONVERTED
    assert converted_id is not None and status_id is not None and converted_id != status_id
    provenance = json.loads(h.store.objects[("converted", prefix + "provenance.json")])
    assert provenance["source_format"] == "aperio-svs"
    assert provenance["inputs"][0]["sha256"] == event.artefacts[0].sha256
    [(_, identity, _)] = h.converter.calls
    assert identity.case_pseudonym == "CASE-PSEUDO"
    assert identity.specimen_pseudonym == "SPEC-PSEUDO"
    assert identity.slide_id == str(event.slide_id)


async def test_a_redelivery_after_publication_converts_and_publishes_nothing(
    tmp_path: Path,
) -> None:
    h = harness(tmp_path)
    event = deidentified_event(h.store)
    await h.workflow.on_deidentified(event)
    await h.workflow.on_deidentified(event)
    assert len(h.converter.calls) == 1
    assert len(h.publisher.sent) == 2


async def test_a_crash_between_publishing_and_recording_it_does_not_duplicate_the_event(
    tmp_path: Path,
) -> None:
    h = harness(tmp_path)
    event = deidentified_event(h.store)
    await h.workflow.on_deidentified(event)
    [(_, converted_id), _] = h.publisher.sent
    assert converted_id is not None
    # As if the process died after publishing and before recording "published":
    with Session(h.engine) as session:
        [row] = session.exec(select(ConversionRow)).all()
        row.published_at = None
        session.add(row)
        session.commit()
    h.verifier.already_out.add(converted_id)
    h.publisher.sent.clear()

    await h.workflow.on_deidentified(event)

    assert len(h.converter.calls) == 1
    assert h.verifier.checked == [converted_id]
    assert [type(e) for e, _ in h.publisher.sent] == [SlideStatusV1]  # status is idempotent


async def test_tenant_output_choice_is_honoured(tmp_path: Path) -> None:
    h = harness(tmp_path, tenant_outputs={TENANT: ("dicom",)})
    event = deidentified_event(h.store)
    await h.workflow.on_deidentified(event)
    converted = h.publisher.sent[0][0]
    assert isinstance(converted, SlideConvertedV1)
    assert converted.tiff is None and len(converted.dicom) == 3


async def test_bytes_that_do_not_match_the_event_are_poison(tmp_path: Path) -> None:
    h = harness(tmp_path)
    event = deidentified_event(h.store)
    h.store.objects[("deidentified", event.artefacts[0].key)] = b"tampered"
    with pytest.raises(ChecksumMismatchError) as caught:
        await h.workflow.on_deidentified(event)
    assert caught.value.reason == "checksum-mismatch"
    assert (
        h.publisher.sent == [] and h.records.find(event.slide_id, event.artefacts[0].sha256) is None
    )


async def test_a_slide_error_becomes_poison_with_its_reason(tmp_path: Path) -> None:
    h = harness(tmp_path)
    h.converter.error = CorruptSlideError("level 1 tile 3 does not decode")
    event = deidentified_event(h.store)
    with pytest.raises(ConvertPoisonError) as caught:
        await h.workflow.on_deidentified(event)
    assert caught.value.reason == "corrupt-slide"
    assert not [k for (b, k) in h.store.objects if b == "converted"]


async def test_an_event_pointing_outside_the_deidentified_bucket_is_poison(
    tmp_path: Path,
) -> None:
    h = harness(tmp_path)
    event = deidentified_event(h.store)
    moved = event.model_copy(
        update={"artefacts": (event.artefacts[0].model_copy(update={"bucket": "quarantine"}),)}
    )
    with pytest.raises(InvalidEventError) as caught:
        await h.workflow.on_deidentified(moved)
    assert caught.value.reason == "wrong-bucket"
    assert h.converter.calls == []


@pytest.mark.parametrize(
    ("file_mpp_um", "declared_mpp_um", "operators_mpp_um", "written", "declared_used"),
    [
        (None, 0.5, None, 0.5, True),  # the file states none: the partner's spacing (issue 18)
        (None, 0.5, 0.25, 0.5, True),  # the partner knows the slide better than a default
        (None, None, 0.25, 0.25, False),  # the operators' assumed spacing, as before
        (0.2527, 0.5, None, 0.5, False),  # the file's own wins inside the converter
    ],
)
async def test_a_declared_spacing_is_the_fallback_when_the_file_states_none(
    tmp_path: Path,
    file_mpp_um: float | None,
    declared_mpp_um: float | None,
    operators_mpp_um: float | None,
    written: float,
    declared_used: bool,
) -> None:
    h = harness(tmp_path, assumed_mpp_um=operators_mpp_um)
    declared = SlideFactsV1(mpp_um=declared_mpp_um, scanner="Scanner X")
    event = deidentified_event(h.store).model_copy(
        update={"mpp_x": file_mpp_um, "mpp_y": file_mpp_um, "declared": declared}
    )
    await h.workflow.on_deidentified(event)

    [(_, _, options)] = h.converter.calls
    assert options.assumed_mpp_um == written
    converted = h.publisher.sent[0][0]
    assert isinstance(converted, SlideConvertedV1)
    assert converted.declared == declared
    assert converted.spacing_declared is declared_used
