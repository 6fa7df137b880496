"""One model on one slide: the work behind a decision (the workflow decides once around it).

1. from the QC event alone, choose the level at the card's spacing
   (:func:`slidestream_wsi.pyramid.choose_level`) and a small level for the thumbnail;
2. download only those ``level-<i>.dcm`` (sha256 checked) and QC's tissue mask;
3. plan tiles over the mask at the card's spacing, size and minimum tissue share; decode and
   normalise them on worker threads while at most ``max_requests_in_flight`` requests are in
   flight (:mod:`slidestream_inference.pipeline`), each answer checked against the card;
4. aggregate and write ``scores.npz``, ``heatmap-<label>.png``, ``embeddings.npz``,
   ``slide-embedding.npy`` and ``summary.json`` under
   ``derived/<tenant>/<slide>/inference/<model>/<version>/``;
5. return ``slides.inferred.v1`` and the ``inferred`` status, to be announced once.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from slidestream_contracts.events import ObjectRef, SlideEvent, SlideQcV1
from slidestream_contracts.model_card import ModelCardV1
from slidestream_inference.adapters.model_cards import StoredCard
from slidestream_inference.adapters.tiles import LevelTiles, TileReader, TileRequest
from slidestream_inference.adapters.triton import TritonModels
from slidestream_inference.domain.aggregate import SlideOutputs
from slidestream_inference.domain.artefacts import (
    level_ref,
    thumbnail_level,
)
from slidestream_inference.domain.outcome import RunFacts, inferred_events, write_plan
from slidestream_inference.domain.tensors import (
    OutputContradictsCardError,
    checked_outputs,
    normalise,
    request_batch_size,
)
from slidestream_inference.pipeline import run_bounded
from slidestream_inference.settings import InferenceSettings
from slidestream_platform.errors import PoisonError
from slidestream_platform.objectstore.downloads import download_verified
from slidestream_platform.objectstore.port import ObjectStore
from slidestream_platform.slide_step import (
    poison_on,
    require_scratch_space,
    scratch_directory,
)
from slidestream_wsi.errors import SlideError
from slidestream_wsi.pyramid import PyramidLevel, TileBatch, choose_level, described_geometry

logger = logging.getLogger(__name__)

WRITE_THREADS = 4
"""Uploads of one run's files in flight at once (a few files of a few MiB each)."""


class InferencePoisonError(PoisonError):
    """This slide can never be analysed by this model (the reason says why)."""

    reason = "invalid-slide"


@dataclass(frozen=True, slots=True)
class InferenceMetrics:
    seconds: Histogram
    tiles: Counter
    tiles_per_slide: Histogram
    tiles_per_s: Histogram
    in_flight: Gauge

    @classmethod
    def register(cls, registry: CollectorRegistry) -> InferenceMetrics:
        return cls(
            seconds=Histogram(
                "slidestream_inference_seconds",
                "Wall time of one model run on one slide (downloads, tiles, requests, outputs).",
                ["model"],
                buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 3600),
                registry=registry,
            ),
            tiles=Counter(
                "slidestream_inference_tiles", "Tiles analysed.", ["model"], registry=registry
            ),
            tiles_per_slide=Histogram(
                "slidestream_inference_tiles_per_slide",
                "Tiles over usable tissue per slide and model.",
                ["model"],
                buckets=(0, 10, 100, 1000, 5000, 20_000, 50_000, 100_000),
                registry=registry,
            ),
            tiles_per_s=Histogram(
                "slidestream_inference_tiles_per_second",
                "Throughput of one run, first tile read to outputs written.",
                ["model"],
                buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500),
                registry=registry,
            ),
            in_flight=Gauge(
                "slidestream_inference_requests_in_flight",
                "Triton requests outstanding (at most MAX_REQUESTS_IN_FLIGHT per run).",
                registry=registry,
            ),
        )


@dataclass(frozen=True, slots=True)
class RunOutcome:
    events: tuple[SlideEvent, ...]
    tile_count: int
    seconds: float


@dataclass(frozen=True, slots=True)
class Inputs:
    level: PyramidLevel
    """The slide's level whose pixels are ``level_file``'s level 0 (the chosen DICOM level;
    level 0 for the pyramidal TIFF, which holds them all)."""
    level_file: Path
    thumbnail_file: Path
    thumbnail_level: int
    """Which level of ``thumbnail_file`` the heat maps are drawn over."""
    mask_png: bytes


class SlideRun:
    def __init__(
        self,
        *,
        settings: InferenceSettings,
        store: ObjectStore,
        tiles: TileReader,
        triton: TritonModels,
        metrics: InferenceMetrics,
    ) -> None:
        self._settings = settings
        self._store = store
        self._tiles = tiles
        self._triton = triton
        self._metrics = metrics

    async def run(self, qc: SlideQcV1, stored: StoredCard) -> RunOutcome:
        card = stored.card
        started = time.perf_counter()
        prefix = f"inference-{qc.slide_id}-{card.name}-{card.version}-"
        with scratch_directory(prefix, self._settings.work_dir) as scratch:
            inputs = await asyncio.to_thread(self._download, qc, card, scratch)
            request = TileRequest(
                card.input.mpp_um, card.input.tile_size_px, card.min_tissue_fraction
            )
            # ValueError: plan_tiles refuses a level without a pixel spacing.
            with poison_on((SlideError, ValueError), InferencePoisonError):
                tiles = await asyncio.to_thread(
                    self._tiles.open, inputs.level_file, inputs.level, inputs.mask_png, request
                )
            try:
                outputs = await self._infer(tiles, card)
                with poison_on(SlideError, InferencePoisonError):
                    thumbnail = await asyncio.to_thread(
                        self._tiles.thumbnail, inputs.thumbnail_file, inputs.thumbnail_level
                    )
            finally:
                tiles.close()
        facts = RunFacts(
            qc=qc,
            card=card,
            card_sha256=stored.sha256,
            # The file's level 0 is the slide's level ``inputs.level``; the plan read its own.
            level_index=inputs.level.index + tiles.plan.level.index,
            level0_size_px=_level0_size(qc),
            tile_mpp_um=tiles.plan.mpp_um,
            origins_l0_px=tiles.origins_l0_px,
            tile_size_l0_px=tiles.tile_size_l0_px,
            bytes_read=tiles.bytes_read,
            seconds=time.perf_counter() - started,
        )
        refs = await asyncio.to_thread(self._write, facts, outputs, thumbnail)
        events = inferred_events(facts, outputs, refs)
        self._observe(card, outputs.tile_count, facts.seconds)
        logger.info(
            "slide analysed",
            extra={
                "slide_id": str(qc.slide_id),
                "tenant": qc.tenant,
                "model": card.name,
                "model_version": card.version,
                "tiles": outputs.tile_count,
                "seconds": round(facts.seconds, 3),
            },
        )
        return RunOutcome(events, outputs.tile_count, facts.seconds)

    # -- steps -----------------------------------------------------------------------------

    def _download(self, qc: SlideQcV1, card: ModelCardV1, scratch: Path) -> Inputs:
        """Only the DICOM level at the card's spacing (and a small one for the heat maps); the
        pyramidal TIFF whole when the tenant's conversion wrote no DICOM."""
        if not qc.levels or qc.tissue_mask is None:
            raise InferencePoisonError(
                "the QC event names no converted levels or no tissue mask", reason="qc-incomplete"
            )
        levels = described_geometry(qc.levels)
        with poison_on(ValueError, InferencePoisonError):
            level = choose_level(levels, card.input.mpp_um)
        thumbnail = thumbnail_level(levels)
        if not qc.dicom and qc.tiff is not None:
            self._require_space(qc, [qc.tissue_mask, qc.tiff], scratch)
            tiff = self._converted_file(qc.tiff, scratch)
            mask = self._mask(qc.tissue_mask, scratch)
            return Inputs(levels[0], tiff, tiff, thumbnail.index, mask)
        refs = {index: self._level_ref(qc, index) for index in {level.index, thumbnail.index}}
        self._require_space(qc, [qc.tissue_mask, *refs.values()], scratch)
        files = {index: self._converted_file(ref, scratch) for index, ref in refs.items()}
        mask = self._mask(qc.tissue_mask, scratch)
        return Inputs(level, files[level.index], files[thumbnail.index], 0, mask)

    @staticmethod
    def _require_space(qc: SlideQcV1, refs: Sequence[ObjectRef], scratch: Path) -> None:
        """A run reads what it downloads and writes its outputs from memory: the files alone."""
        needed_bytes = sum(ref.size_bytes for ref in refs)
        require_scratch_space(scratch, needed_bytes, what=f"slide {qc.slide_id}")

    def _mask(self, ref: ObjectRef, scratch: Path) -> bytes:
        target = scratch / "tissue-mask.png"
        bucket = self._settings.derived_bucket
        return download_verified(self._store, ref, target, expected_bucket=bucket).read_bytes()

    def _level_ref(self, qc: SlideQcV1, index: int) -> ObjectRef:
        ref = level_ref(qc.dicom, index)
        if ref is None:
            raise InferencePoisonError(
                f"the QC event names no DICOM file of level {index}", reason="level-missing"
            )
        return ref

    def _converted_file(self, ref: ObjectRef, scratch: Path) -> Path:
        target = scratch / ref.key.rsplit("/", 1)[-1]
        return download_verified(
            self._store, ref, target, expected_bucket=self._settings.converted_bucket
        )

    async def _infer(self, tiles: LevelTiles, card: ModelCardV1) -> SlideOutputs:
        outputs = SlideOutputs(card, len(tiles.origins_l0_px))
        names = [output.name for output in card.outputs]

        def prepare(batch: TileBatch) -> npt.NDArray[np.float32]:
            return normalise(batch.pixels, card.input)

        async def send(start: int, tensor: npt.NDArray[np.float32]) -> None:
            self._metrics.in_flight.inc()
            try:
                answer = await self._triton.infer(
                    card.name, card.version, card.input.name, tensor, names
                )
            finally:
                self._metrics.in_flight.dec()
            try:
                checked = checked_outputs(card, answer, len(tensor))
            except OutputContradictsCardError as error:
                raise InferencePoisonError(
                    f"{card.name} {card.version}: {error}", reason=error.reason
                ) from error
            outputs.put(start, checked)

        with poison_on(SlideError, InferencePoisonError):
            await run_bounded(
                tiles.parts(
                    self._settings.decode_threads,
                    request_batch_size(card, self._settings.request_batch_tiles),
                ),
                prepare=prepare,
                send=send,
                decode_threads=self._settings.decode_threads,
                in_flight=self._settings.max_requests_in_flight,
            )
        if not outputs.complete:
            raise RuntimeError("the pipeline ended with tiles not analysed")  # a bug: retried
        return outputs

    def _write(
        self, facts: RunFacts, outputs: SlideOutputs, thumbnail: npt.NDArray[np.uint8]
    ) -> dict[str, ObjectRef]:
        """Each file stored while the next is made (the heat maps' PNG encodes and the uploads
        overlap); the plan's last file (``summary.json``) only once every other is stored."""

        def put(name: str, data: bytes, content_type: str) -> ObjectRef:
            written = self._store.put_stream(
                self._settings.derived_bucket,
                facts.key(name),
                io.BytesIO(data),
                len(data),
                content_type=content_type,
            )
            return written.to_event_ref()

        stored: dict[str, Future[ObjectRef]] = {}
        held: tuple[str, bytes, str] | None = None
        with ThreadPoolExecutor(WRITE_THREADS, thread_name_prefix="inference-write") as pool:
            for made in write_plan(facts, outputs, thumbnail):
                if held is not None:
                    stored[held[0]] = pool.submit(put, *held)
                held = made
            refs = {name: future.result() for name, future in stored.items()}
        assert held is not None  # the plan always ends with the summary
        refs[held[0]] = put(*held)
        return refs

    def _observe(self, card: ModelCardV1, tile_count: int, seconds: float) -> None:
        self._metrics.seconds.labels(model=card.name).observe(seconds)
        self._metrics.tiles.labels(model=card.name).inc(tile_count)
        self._metrics.tiles_per_slide.labels(model=card.name).observe(tile_count)
        if seconds > 0:
            self._metrics.tiles_per_s.labels(model=card.name).observe(tile_count / seconds)


def _level0_size(qc: SlideQcV1) -> tuple[int, int]:
    base = max(qc.levels, key=lambda level: level.width_px)
    return base.width_px, base.height_px
