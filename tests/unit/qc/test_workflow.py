"""The qc workflow with in-memory ports: level choice, downloads, outputs, verdict → state."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from uuid import uuid4

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import create_engine

from slidestream_contracts.events import (
    Compression,
    ConvertedLevel,
    ObjectRef,
    SlideConvertedV1,
    SlideFactsV1,
    SlideQcV1,
    SlideStatusV1,
)
from slidestream_contracts.states import SlideState
from slidestream_platform.decisions import DecisionPublisher, SqlDecisionRecords
from slidestream_platform.errors import ChecksumMismatchError
from slidestream_qc.adapters.runner import QcOutcome
from slidestream_qc.adapters.tables import QcDecisionRow, metadata
from slidestream_qc.domain.outcome import EVENT_ID_NAMESPACE
from slidestream_qc.settings import QcSettings
from slidestream_qc.workflow import QcMetrics, QcWorkflow
from slidestream_wsi.pyramid import described_geometry
from slidestream_wsi.qc import PyramidLevel, QcReport, QcThresholds
from slidestream_wsi.qc.report import QcMeasureResult
from tests.support.fakes import FakeVerifier, MemoryStore, RecordingPublisher

TENANT = "lab-q"
LEVELS = ((0, 40_000, 30_000, 0.25), (1, 10_000, 7_500, 1.0), (2, 2_500, 1_875, 4.0))


def sql_records(tmp_path: Path) -> SqlDecisionRecords[QcDecisionRow]:
    """The service's real decision table, on a SQLite file of the test's own."""
    engine = create_engine(f"sqlite:///{tmp_path / 'decisions.db'}")
    metadata.create_all(engine)
    return SqlDecisionRecords(engine, QcDecisionRow)


@dataclass
class ScriptedRunner:
    verdict: str = "pass"
    needed: tuple[int, ...] = (1, 2)
    dicom_calls: list[tuple[list[str], int, QcThresholds]] = field(default_factory=list)
    tiff_calls: list[str] = field(default_factory=list)

    def levels_needed(self, levels: Sequence[PyramidLevel]) -> tuple[int, ...]:
        assert [lv.index for lv in levels] == [0, 1, 2]
        return self.needed

    def _outcome(self, bytes_read: int, total: int) -> QcOutcome:
        measure = QcMeasureResult(
            name="blur_fraction",
            value=0.4 if self.verdict != "pass" else 0.01,
            unit="fraction of tissue",
            threshold=0.2,
            verdict=self.verdict,  # type: ignore[arg-type]
        )
        report = QcReport(
            verdict=self.verdict,  # type: ignore[arg-type]
            measures=(measure,),
            reasons=() if self.verdict == "pass" else ("blur_fraction 0.40 > 0.20",),
            bytes_read=bytes_read,
            total_bytes=total,
            read_fraction=bytes_read / total,
            levels_read=self.needed,
        )
        pictures = {
            "overlay.png": b"\x89PNG overlay",
            "tissue-mask.png": b"\x89PNG mask",
            "report.html": b"<html>",
        }
        return QcOutcome(report, pictures)

    def run_dicom(
        self,
        level_files: Sequence[Path],
        all_levels: Sequence[PyramidLevel],
        total_bytes: int,
        thresholds: QcThresholds,
        label: str,
    ) -> QcOutcome:
        self.dicom_calls.append(([p.name for p in level_files], total_bytes, thresholds))
        return self._outcome(sum(p.stat().st_size for p in level_files), total_bytes)

    def run_tiff(self, path: Path, thresholds: QcThresholds, label: str) -> QcOutcome:
        self.tiff_calls.append(path.name)
        return self._outcome(path.stat().st_size, path.stat().st_size)


def put(store: MemoryStore, key: str, data: bytes) -> ObjectRef:
    store.objects[("converted", key)] = data
    return ObjectRef(
        bucket="converted", key=key, sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data)
    )


def converted_event(store: MemoryStore, *, dicom: bool = True) -> SlideConvertedV1:
    slide_id = uuid4()
    prefix = f"{TENANT}/{slide_id}"
    refs = (
        tuple(
            put(store, f"{prefix}/dicom/level-{i}.dcm", bytes([i]) * (1000 // (i + 1)))
            for i in range(3)
        )
        if dicom
        else ()
    )
    return SlideConvertedV1(
        slide_id=slide_id,
        tenant=TENANT,
        dicom=refs,
        tiff=put(store, f"{prefix}/tiff/slide.ome.tiff", b"II*\x00" * 100),
        levels=tuple(
            ConvertedLevel(
                index=i,
                width_px=w,
                height_px=h,
                tile_size_px=256,
                mpp_x=mpp,
                mpp_y=mpp,
                compression=Compression.JPEG,
                lossless_copy=True,
            )
            for i, w, h, mpp in LEVELS
        ),
    )


def workflow(
    tmp_path: Path, runner: ScriptedRunner, **settings: object
) -> tuple[QcWorkflow, MemoryStore, RecordingPublisher]:
    store, publisher = MemoryStore(), RecordingPublisher()
    flow = QcWorkflow(
        settings=QcSettings(work_dir=tmp_path, **settings),  # type: ignore[arg-type]
        store=store,
        records=sql_records(tmp_path),
        runner=runner,
        decisions=DecisionPublisher(publisher, FakeVerifier(), EVENT_ID_NAMESPACE),
        metrics=QcMetrics.register(CollectorRegistry()),
    )
    return flow, store, publisher


def test_the_pyramid_is_described_from_the_event_alone() -> None:
    event = converted_event(MemoryStore())
    levels = described_geometry(event.levels)
    assert [lv.downsample for lv in levels] == [1.0, 4.0, 16.0]
    assert levels[1].mpp_x == 1.0


async def test_only_the_needed_levels_are_downloaded_and_outputs_land_in_derived(
    tmp_path: Path,
) -> None:
    runner = ScriptedRunner()
    flow, store, publisher = workflow(tmp_path, runner)
    event = converted_event(store)
    store.objects[("converted", event.dicom[0].key)] = b"level 0 must never be read"
    await flow.on_converted(event)

    [(files, total, _)] = runner.dicom_calls
    assert files == ["level-1.dcm", "level-2.dcm"]
    assert total == sum(ref.size_bytes for ref in event.dicom)
    derived = sorted(k for (b, k) in store.objects if b == "derived")
    prefix = f"{TENANT}/{event.slide_id}/qc/"
    assert derived == [
        prefix + "overlay.png",
        prefix + "report.html",
        prefix + "report.json",
        prefix + "tissue-mask.png",
    ]
    report = json.loads(store.objects[("derived", prefix + "report.json")])
    assert report["schema_version"] == "qc-report.v1"

    [(qc, _), (status, _)] = publisher.sent
    assert isinstance(qc, SlideQcV1) and qc.verdict == "pass"
    assert qc.report is not None and qc.report.key == prefix + "report.json"
    assert [o.key.rsplit("/", 1)[-1] for o in qc.overlays] == ["overlay.png", "report.html"]
    # What inference needs travels on: the usable-tissue mask and the converted pyramid.
    assert qc.tissue_mask is not None and qc.tissue_mask.key == prefix + "tissue-mask.png"
    assert (qc.dicom, qc.levels) == (event.dicom, event.levels)
    assert isinstance(status, SlideStatusV1) and status.state == SlideState.QC_PASSED


@pytest.mark.parametrize(
    ("verdict", "state"), [("warn", SlideState.QC_WARNED), ("fail", SlideState.QC_FAILED)]
)
async def test_warned_and_failed_slides_carry_their_reasons(
    tmp_path: Path, verdict: str, state: SlideState
) -> None:
    flow, store, publisher = workflow(tmp_path, ScriptedRunner(verdict=verdict))
    await flow.on_converted(converted_event(store))
    [(qc, _), (status, _)] = publisher.sent
    assert isinstance(qc, SlideQcV1) and qc.reasons == ("blur_fraction 0.40 > 0.20",)
    assert isinstance(status, SlideStatusV1)
    assert status.state == state and status.reason == f"qc-{verdict}"
    assert "blur_fraction" in status.detail


async def test_without_dicom_the_tiff_is_read(tmp_path: Path) -> None:
    runner = ScriptedRunner()
    flow, store, _ = workflow(tmp_path, runner)
    await flow.on_converted(converted_event(store, dicom=False))
    assert runner.tiff_calls == ["slide.ome.tiff"] and runner.dicom_calls == []


async def test_tenant_thresholds_override_the_platform_defaults(tmp_path: Path) -> None:
    runner = ScriptedRunner()
    flow, store, _ = workflow(
        tmp_path,
        runner,
        default_thresholds={"blur_fraction_max_fail": 0.5},
        tenant_thresholds={TENANT: {"blur_fraction_max_warn": 0.2, "pen_fraction_max_warn": None}},
    )
    other = flow._settings.thresholds_for("someone-else")
    assert other.blur_fraction_max_fail == 0.5
    assert other.blur_fraction_max_warn == QcThresholds().blur_fraction_max_warn
    mine = flow._settings.thresholds_for(TENANT)
    assert (mine.blur_fraction_max_warn, mine.blur_fraction_max_fail) == (0.2, 0.5)
    assert mine.pen_fraction_max_warn is None
    await flow.on_converted(converted_event(store))
    assert runner.dicom_calls[0][2] == mine


async def test_a_redelivery_publishes_nothing_new(tmp_path: Path) -> None:
    runner = ScriptedRunner()
    flow, store, publisher = workflow(tmp_path, runner)
    event = converted_event(store)
    await flow.on_converted(event)
    await flow.on_converted(event)
    assert len(runner.dicom_calls) == 1 and len(publisher.sent) == 2


async def test_tampered_level_bytes_are_poison(tmp_path: Path) -> None:
    flow, store, publisher = workflow(tmp_path, ScriptedRunner())
    event = converted_event(store)
    store.objects[("converted", event.dicom[1].key)] = b"tampered"
    with pytest.raises(ChecksumMismatchError) as caught:
        await flow.on_converted(event)
    assert caught.value.reason == "checksum-mismatch" and publisher.sent == []


def test_a_misspelt_threshold_stops_the_service_at_start(tmp_path: Path) -> None:
    from slidestream_wsi.qc.thresholds import QcThresholdsError

    with pytest.raises((QcThresholdsError, ValueError)) as caught:
        QcSettings(tenant_thresholds={TENANT: {"blur_fractoin_max_warn": 0.2}})
    assert "blur_fractoin_max_warn" in str(caught.value)


@pytest.mark.parametrize(
    ("declared_mpp_um", "spacing_declared", "verdict", "measured_pct"),
    [
        (0.25, False, "pass", 0.0),  # the file and the partner agree
        (0.2625, False, "pass", 4.76),  # within 5 %
        (0.5, False, "warn", 50.0),  # the file says 40x, the partner 20x: a warning (issue 18)
        (0.5, True, "pass", None),  # the file stated none: the declared one was written
    ],
)
async def test_a_declared_spacing_unlike_the_files_is_a_warning(
    tmp_path: Path,
    declared_mpp_um: float,
    spacing_declared: bool,
    verdict: str,
    measured_pct: float | None,
) -> None:
    flow, store, publisher = workflow(tmp_path, ScriptedRunner())
    event = converted_event(store).model_copy(
        update={
            "declared": SlideFactsV1(mpp_um=declared_mpp_um),
            "spacing_declared": spacing_declared,
        }
    )
    await flow.on_converted(event)

    [(qc, _), (status, _)] = publisher.sent
    assert isinstance(qc, SlideQcV1) and qc.verdict == verdict
    measured = {m.name: m.value for m in qc.measures}.get("declared_spacing_difference")
    assert measured == (pytest.approx(measured_pct) if measured_pct is not None else None)
    report = json.loads(store.objects[("derived", f"{TENANT}/{event.slide_id}/qc/report.json")])
    assert report["verdict"] == verdict
    if verdict == "warn":
        assert isinstance(status, SlideStatusV1) and status.state == SlideState.QC_WARNED
        assert "declared spacing 0.5 µm/px differs from the file's 0.25 µm/px" in status.detail
        html = store.objects[("derived", f"{TENANT}/{event.slide_id}/qc/report.html")]
        assert b"declared_spacing_difference" in html or b"declared spacing" in html
