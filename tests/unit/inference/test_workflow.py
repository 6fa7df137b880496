"""The inference workflow with in-memory ports and a fake Triton, on a real converted slide:
routing, the run and its outputs, decisions once per (slide, model, version), and failures."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from uuid import uuid4

import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import create_engine
from sqlmodel import Session, select

from slidestream_contracts.events import (
    InferenceRequestedV1,
    ObjectRef,
    QcVerdict,
    SlideFormat,
    SlideInferredV1,
    SlideQcV1,
    SlideStatusV1,
    SlideUploadedV1,
)
from slidestream_contracts.states import SlideState, Step
from slidestream_inference.adapters.model_cards import StoreModelCards
from slidestream_inference.adapters.route_source import MemoryRouteSource
from slidestream_inference.adapters.routes import SqlBackfills
from slidestream_inference.adapters.slide_records import SqlSlideRecords
from slidestream_inference.adapters.tables import InferenceDecisionRow, metadata
from slidestream_inference.adapters.tiles import WsiTileReader
from slidestream_inference.adapters.triton import ModelNotReadyError, TritonUnavailableError
from slidestream_inference.domain.artefacts import EVENT_ID_NAMESPACE
from slidestream_inference.domain.heatmaps import LEGEND_HEIGHT_PX
from slidestream_inference.domain.routing import MinQc, RouteRule
from slidestream_inference.settings import InferenceSettings
from slidestream_inference.slide_run import InferenceMetrics, SlideRun
from slidestream_inference.workflow import InferenceWorkflow
from slidestream_platform.decisions import DecisionPublisher, SqlDecisionRecords
from slidestream_platform.errors import PoisonError, RetryableError
from tests.support.fakes import FakeVerifier, MemoryStore, RecordingPublisher
from tests.support.inference import (
    STRIPE_WIDTH_PX,
    ConvertedSlide,
    FakeTriton,
    decode_png,
    model_card,
    qc_event,
    store_card,
    stripe_grey,
)

TENANT = "lab-i"
IN_FLIGHT = 3
JPEG_GREY_TOLERANCE = 2 / 255
"""Flat grey stripes through JPEG (quality 95) and an area resize: within 2 grey levels."""


@dataclass
class Harness:
    flow: InferenceWorkflow
    store: MemoryStore
    publisher: RecordingPublisher
    triton: FakeTriton
    routes: MemoryRouteSource
    engine: object

    def decisions(self) -> list[InferenceDecisionRow]:
        with Session(self.engine) as session:  # type: ignore[arg-type]
            return list(session.exec(select(InferenceDecisionRow)).all())

    def inferred(self) -> list[SlideInferredV1]:
        return [e for e, _ in self.publisher.sent if isinstance(e, SlideInferredV1)]


@dataclass
class Restorer:
    """The models API's side of a Triton restart: a wanted model is loaded again on demand."""

    triton: FakeTriton
    wanted: set[str]
    restored: list[str] = field(default_factory=list)

    async def restore(self, name: str) -> bool:
        if name not in self.wanted:
            return False
        self.restored.append(name)
        self.triton.ready[name] = ("1",)
        return True


def harness(
    tmp_path: Path, triton: FakeTriton | None = None, restorer: Restorer | None = None
) -> Harness:
    engine = create_engine(f"sqlite:///{tmp_path / 'inference.db'}")
    metadata.create_all(engine)
    store, publisher = MemoryStore(), RecordingPublisher()
    triton = triton or FakeTriton(ready={"grey": ("1",)})
    routes = MemoryRouteSource([RouteRule("grey", TENANT)])
    settings = InferenceSettings(
        work_dir=tmp_path / "work", decode_threads=2, max_requests_in_flight=IN_FLIGHT
    )
    run = SlideRun(
        settings=settings,
        store=store,
        tiles=WsiTileReader(),
        triton=triton,
        metrics=InferenceMetrics.register(CollectorRegistry()),
    )
    flow = InferenceWorkflow(
        settings=settings,
        slides=SqlSlideRecords(engine),
        routes=routes,
        cards=StoreModelCards(store, settings.models_bucket),
        triton=triton,
        run=run,
        records=SqlDecisionRecords(engine, InferenceDecisionRow),
        decisions=DecisionPublisher(publisher, FakeVerifier(), EVENT_ID_NAMESPACE),
        backfills=SqlBackfills(engine),
        models=restorer or Restorer(triton, wanted=set()),
    )
    store_card(store, model_card())
    return Harness(flow, store, publisher, triton, routes, engine)


def tissue_below_the_top_row() -> np.ndarray:
    """QC's mask (64 x 48, whole slide): the top 256 level-0 px (a row of tiles) unusable."""
    usable = np.ones((48, 64), bool)
    usable[:8] = False
    return usable


def event(h: Harness, slide: ConvertedSlide, verdict: QcVerdict = QcVerdict.PASS) -> SlideQcV1:
    qc = qc_event(h.store, slide, tissue_below_the_top_row(), tenant=TENANT, verdict=verdict)
    for ref in qc.dicom:
        if not ref.key.endswith("level-1.dcm"):
            # Only the level at the model's 1 µm/px (also the thumbnail's) may be read.
            h.store.objects[("converted", ref.key)] = b"never read"
    return qc


def derived(h: Harness, ref: ObjectRef | None) -> bytes:
    assert ref is not None and ref.bucket == "derived"
    return h.store.objects[("derived", ref.key)]


def assert_heat_maps_and_files(h: Harness, inferred: SlideInferredV1) -> None:
    """One heat map per class over the 1024 px level, and the run's fixed file names."""
    [dark_png, light_png] = inferred.heatmaps
    assert [r.key.rsplit("/", 1)[-1] for r in inferred.heatmaps] == [
        "heatmap-dark.png",
        "heatmap-light.png",
    ]
    picture = decode_png(derived(h, light_png))
    # The 1024 px level as thumbnail, and the legend strip under it.
    assert picture.shape == (768 + LEGEND_HEIGHT_PX, 1024, 3)
    top_left = picture[10, 10]  # the masked top row: the thumbnail alone, grey
    assert abs(int(top_left[0]) - stripe_grey(0)) <= 3 and top_left[0] == top_left[2]
    red, _, blue = picture[400, 1000].astype(int)  # light stripe: JET red over light grey
    assert red > blue + 60
    dark = decode_png(derived(h, dark_png))
    red, _, blue = dark[400, 10].astype(int)  # dark stripe: red in the dark class's map
    assert red > blue + 60

    prefix = f"{TENANT}/{inferred.slide_id}/inference/grey/1/"
    summary = json.loads(h.store.objects[("derived", prefix + "summary.json")])
    assert summary["tile_count"] == 40 and summary["level"] == 1
    assert {r.key for r in inferred.outputs} == {
        prefix + name
        for name in (
            "scores.npz",
            "heatmap-dark.png",
            "heatmap-light.png",
            "embeddings.npz",
            "slide-embedding.npy",
            "summary.json",
        )
    }


async def test_a_passed_slide_is_tiled_inferred_and_its_heat_map_holds_the_tile_means(
    tmp_path: Path, striped: ConvertedSlide
) -> None:
    h = harness(tmp_path)
    qc = event(h, striped)
    await h.flow.on_qc(qc)

    [(inferred, _), (status, _)] = h.publisher.sent
    assert isinstance(inferred, SlideInferredV1) and isinstance(status, SlideStatusV1)
    assert (status.state, status.step) == (SlideState.INFERRED, Step.INFERENCE)
    assert (inferred.model_name, inferred.model_version) == ("grey", "1")
    # Level 1 (1 µm/px, 1024 x 768) in 128 px tiles: 8 x 6, less the masked top row.
    assert inferred.tile_count == 40 and inferred.tile_mpp_um == pytest.approx(1.0)
    assert h.triton.tiles == 40 and h.triton.max_in_flight <= IN_FLIGHT

    scores = np.load(io.BytesIO(derived(h, inferred.scores)), allow_pickle=False)
    assert scores["labels"].tolist() == ["dark", "light"]
    assert int(scores["tile_size_l0_px"]) == 256
    origins = scores["origins_px"]
    assert origins.dtype == np.int64 and origins[:, 1].min() == 256
    expected = np.array([stripe_grey(x // STRIPE_WIDTH_PX) / 255 for x in origins[:, 0]])
    np.testing.assert_allclose(scores["probabilities"][:, 1], expected, atol=JPEG_GREY_TOLERANCE)
    assert inferred.summary["fraction:light"] == 0.5  # stripes 4..7 are lighter than mid-grey
    assert inferred.summary["max:light"] == pytest.approx(stripe_grey(7) / 255, abs=0.01)

    embeddings = np.load(io.BytesIO(derived(h, inferred.embeddings)), allow_pickle=False)
    assert embeddings["embeddings"].dtype == np.float16 and embeddings["embeddings"].shape == (
        40,
        3,
    )
    np.testing.assert_array_equal(embeddings["origins_px"], origins)
    slide_embedding = np.load(io.BytesIO(derived(h, inferred.slide_embedding)))
    assert slide_embedding.dtype == np.float32
    np.testing.assert_allclose(slide_embedding, [expected.mean()] * 3, atol=JPEG_GREY_TOLERANCE)

    assert_heat_maps_and_files(h, inferred)


async def test_a_tenant_without_dicom_output_is_analysed_from_the_pyramidal_tiff(
    tmp_path: Path, striped: ConvertedSlide
) -> None:
    h = harness(tmp_path)
    from_dicom = event(h, striped)
    await h.flow.on_qc(from_dicom)
    tiff_only = qc_event(
        h.store, striped, tissue_below_the_top_row(), tenant=TENANT, tiff_only=True
    )
    assert tiff_only.dicom == () and tiff_only.tiff is not None
    await h.flow.on_qc(tiff_only)

    dicom_run, tiff_run = h.inferred()
    assert tiff_run.tile_count == dicom_run.tile_count == 40
    by_dicom = np.load(io.BytesIO(derived(h, dicom_run.scores)), allow_pickle=False)
    by_tiff = np.load(io.BytesIO(derived(h, tiff_run.scores)), allow_pickle=False)
    # The same tiles at the same level-0 places, the same pixels (the TIFF holds the DICOM's
    # levels), so the same scores.
    np.testing.assert_array_equal(by_tiff["origins_px"], by_dicom["origins_px"])
    assert int(by_tiff["tile_size_l0_px"]) == int(by_dicom["tile_size_l0_px"])
    np.testing.assert_allclose(
        by_tiff["probabilities"], by_dicom["probabilities"], atol=JPEG_GREY_TOLERANCE
    )
    assert_heat_maps_and_files(h, tiff_run)


async def test_a_slide_without_usable_tissue_is_announced_with_no_tiles(
    tmp_path: Path, striped: ConvertedSlide
) -> None:
    h = harness(tmp_path)
    qc = qc_event(h.store, striped, np.zeros((48, 64), bool), tenant=TENANT)
    await h.flow.on_qc(qc)
    [inferred] = h.inferred()
    assert inferred.tile_count == 0 and inferred.summary == {} and h.triton.requests == 0
    assert inferred.slide_embedding is None and len(inferred.heatmaps) == 2
    scores = np.load(io.BytesIO(derived(h, inferred.scores)), allow_pickle=False)
    assert scores["probabilities"].shape == (0, 2)


async def test_each_model_version_is_decided_once_per_slide(
    tmp_path: Path, striped: ConvertedSlide
) -> None:
    h = harness(tmp_path)
    qc = event(h, striped)
    await h.flow.on_qc(qc)
    await h.flow.on_qc(qc)  # a redelivery
    assert h.triton.requests == 10 and len(h.publisher.sent) == 2

    store_card(h.store, model_card(version="2"))
    h.triton.ready["grey"] = ("1", "2")
    await h.flow.on_qc(qc)  # the route follows the latest ready version
    request = InferenceRequestedV1(
        slide_id=qc.slide_id, tenant=TENANT, model_name="grey", model_version="1"
    )
    await h.flow.on_requested(request)  # a backfill of a version already run: nothing new
    assert [e.model_version for e in h.inferred()] == ["1", "2"]
    rows = h.decisions()
    assert sorted((r.model_name, r.model_version) for r in rows) == [("grey", "1"), ("grey", "2")]
    assert len({r.input_sha256 for r in rows}) == 2 and all(r.published_at for r in rows)
    ids = [event_id for _, event_id in h.publisher.sent]
    assert len(set(ids)) == 4


@pytest.mark.parametrize(
    ("verdict", "min_qc", "runs"),
    [
        (QcVerdict.FAIL, MinQc.WARN, False),
        (QcVerdict.WARN, MinQc.PASS, False),
        (QcVerdict.WARN, MinQc.WARN, True),
    ],
)
async def test_min_qc_decides_and_a_failed_slide_is_never_analysed(
    tmp_path: Path, striped: ConvertedSlide, verdict: QcVerdict, min_qc: MinQc, runs: bool
) -> None:
    h = harness(tmp_path)
    h.routes.rules = [RouteRule("grey", TENANT, min_qc=min_qc)]
    qc = event(h, striped, verdict)
    await h.flow.on_qc(qc)
    assert (len(h.inferred()) == 1) is runs and (h.triton.requests > 0) is runs
    request = InferenceRequestedV1(
        slide_id=qc.slide_id, tenant=TENANT, model_name="grey", model_version="1"
    )
    await h.flow.on_requested(request)
    assert len(h.inferred()) == (1 if runs or verdict is QcVerdict.WARN else 0)


async def test_a_model_whose_outputs_lie_about_their_shape_is_poison(
    tmp_path: Path, striped: ConvertedSlide
) -> None:
    def three_classes(batch: np.ndarray) -> dict[str, np.ndarray]:
        n = len(batch)
        return {"PROBS": np.zeros((n, 3), np.float32), "EMBED": np.zeros((n, 3), np.float32)}

    h = harness(tmp_path, FakeTriton(model=three_classes, ready={"grey": ("1",)}))
    with pytest.raises(PoisonError) as caught:
        await h.flow.on_qc(event(h, striped))
    assert caught.value.reason == "model-output-shape" and "PROBS" in str(caught.value)
    assert h.publisher.sent == [] and h.decisions() == []


async def test_triton_unavailable_mid_slide_is_retried_and_announced_once_after(
    tmp_path: Path, striped: ConvertedSlide
) -> None:
    triton = FakeTriton(
        ready={"grey": ("1",)}, failure=TritonUnavailableError("connection refused"), fail_after=3
    )
    h = harness(tmp_path, triton)
    qc = event(h, striped)
    with pytest.raises(RetryableError):
        await h.flow.on_qc(qc)
    assert h.publisher.sent == [] and h.decisions() == []
    assert not list((tmp_path / "work").iterdir())  # the scratch directory went with the failure
    triton.failure = None
    await h.flow.on_qc(qc)
    await h.flow.on_qc(qc)
    assert len(h.inferred()) == 1 and len(h.publisher.sent) == 2


async def test_a_routed_model_without_a_ready_version_is_retried(
    tmp_path: Path, striped: ConvertedSlide
) -> None:
    h = harness(tmp_path, FakeTriton(ready={}))
    with pytest.raises(RetryableError) as caught:
        await h.flow.on_qc(event(h, striped))
    assert caught.value.reason == "model-not-ready"


async def test_a_stain_known_after_qc_brings_the_stain_routes(
    tmp_path: Path, striped: ConvertedSlide
) -> None:
    h = harness(tmp_path)
    h.routes.rules = [RouteRule("grey", TENANT, stain="H&E")]
    qc = event(h, striped)
    await h.flow.on_qc(qc)
    assert h.inferred() == []
    upload = SlideUploadedV1(
        slide_id=qc.slide_id,
        tenant=TENANT,
        original=ObjectRef(bucket="quarantine", key="k", sha256="0" * 64, size_bytes=1),
        container_format=SlideFormat.DICOM,
        upload_id="u",
        stain="h&e",
    )
    await h.flow.on_uploaded(upload)
    assert len(h.inferred()) == 1


async def test_a_backfill_counts_each_request_once_done_or_failed(
    tmp_path: Path, striped: ConvertedSlide
) -> None:
    h = harness(tmp_path)
    backfills = SqlBackfills(h.engine)
    backfill_id = uuid4()
    backfills.create(backfill_id, "grey", "1", requested=2)
    qc = event(h, striped, QcVerdict.PASS)
    h.routes.rules = []  # the slide is known, but only the backfill runs it
    await h.flow.on_qc(qc)
    request = InferenceRequestedV1(
        slide_id=qc.slide_id,
        tenant=TENANT,
        model_name="grey",
        model_version="1",
        backfill_id=backfill_id,
    )
    await h.flow.on_requested(request)
    await h.flow.on_requested(request)  # a redelivery: decided already, not counted again
    unknown = request.model_copy(update={"slide_id": uuid4()})
    with pytest.raises(PoisonError):
        await h.flow.on_requested(unknown)
    progress = backfills.get(backfill_id)
    assert progress is not None and (progress.done, progress.failed) == (1, 0)
    assert len(h.inferred()) == 1


async def test_a_model_triton_lost_is_loaded_again_only_when_it_is_wanted(
    tmp_path: Path, striped: ConvertedSlide
) -> None:
    triton = FakeTriton(ready={})  # Triton restarted: explicit model control loads nothing
    restorer = Restorer(triton, wanted=set())
    h = harness(tmp_path, triton, restorer)
    qc = event(h, striped, QcVerdict.PASS)
    with pytest.raises(ModelNotReadyError):  # nobody loaded it: retried, not reloaded
        await h.flow.on_qc(qc)
    assert restorer.restored == [] and h.inferred() == []
    restorer.wanted.add("grey")  # the models API had loaded it
    await h.flow.on_qc(qc)
    assert restorer.restored == ["grey"]
    assert [e.model_version for e in h.inferred()] == ["1"]


async def test_a_request_for_a_slide_without_qc_is_poison(tmp_path: Path) -> None:
    h = harness(tmp_path)
    request = InferenceRequestedV1(
        slide_id=uuid4(), tenant=TENANT, model_name="grey", model_version="1"
    )
    with pytest.raises(PoisonError) as caught:
        await h.flow.on_requested(request)
    assert caught.value.reason == "slide-not-qc-checked"
