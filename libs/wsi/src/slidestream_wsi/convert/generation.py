"""Level generation: the dyadic levels a source lacks, downsampled from the level above them
while that level's pass runs.

Below a level whose tiles are only copied, a job on a thread of its own decodes the level and
writes the generated levels (their DICOM instances, their TIFF spools) while the main thread
copies, level after level; below a level the main thread decodes anyway, the copy pass feeds
the same downsampling chain (:meth:`LevelGeneration.cascade`) itself.
"""

from __future__ import annotations

import threading
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field

from slidestream_wsi.convert.pixels import Downsampler, Retiler
from slidestream_wsi.convert.plan import LevelPlan
from slidestream_wsi.convert.targets import GeneratedOutputs, LevelTargets
from slidestream_wsi.convert.tile_pool import EncodedStream, band, decoded_rows
from slidestream_wsi.pyramid import Pixels, SourceLevel


@dataclass
class Cascade:
    """The downsampling chain of the generated levels right below one level, and the encoders
    that write their tiles."""

    head: Downsampler | None = None
    streams: list[EncodedStream] = field(default_factory=list)


class StoppedError(Exception):
    """A generation job stops because the conversion failed elsewhere."""


class Fanout:
    """Sends a downsampled band to its level's retiler and to the next downsampler."""

    def __init__(self, retiler: Retiler, downstream: Downsampler | None) -> None:
        self._retiler = retiler
        self._downstream = downstream

    def __call__(self, pixels: Pixels) -> None:
        self._retiler.push(pixels)
        if self._downstream is not None:
            self._downstream.push(pixels)

    def finish(self) -> None:
        self._retiler.finish()
        if self._downstream is not None:
            self._downstream.finish()


def encodes(plan: LevelPlan) -> bool:
    """Some output of the level re-encodes its pixels (so its pass decodes them)."""
    return any(e is not None and e.mode == "encode" for e in (plan.dicom, plan.tiff))


class LevelGeneration:
    """The generated levels of one conversion: their outputs while they are written, and the
    jobs that write those below a copied level."""

    def __init__(
        self,
        plans: list[LevelPlan],
        pool: Executor,
        targets: LevelTargets,
        *,
        tile_px: int,
        quality: int,
    ) -> None:
        self._plans = plans
        self._pool = pool
        self._targets = targets
        self._tile_px = tile_px
        self._quality = quality
        self._outputs: dict[int, GeneratedOutputs] = {}
        self._jobs: dict[int, Future[None]] = {}
        self.stopping = threading.Event()

    def start_jobs(self, thread: Executor) -> None:
        """One job per copied level with generated levels below it, run on ``thread``."""
        for plan in self._plans:
            if plan.source is not None and not encodes(plan) and self.children(plan):
                self._jobs[plan.index] = thread.submit(self._job, plan, plan.source)

    def has_job(self, plan: LevelPlan) -> bool:
        return plan.index in self._jobs

    def take(self, plan: LevelPlan) -> GeneratedOutputs:
        """A generated level's outputs, once the pass or job that fills them is done."""
        base = self._base_plan(plan)
        if base.index in self._jobs:
            self._jobs[base.index].result()
        return self._outputs.pop(plan.index)

    def discard(self) -> None:
        for outputs in self._outputs.values():
            outputs.discard()
        self._outputs.clear()

    def cascade(self, plan: LevelPlan) -> Cascade:
        """The downsampling chain of the generated levels right below ``plan``."""
        children = self.children(plan)
        if not children:
            return Cascade()
        cascade = Cascade()
        for child in reversed(children):
            outputs = GeneratedOutputs(dicom=None, spool=None)
            self._outputs[child.index] = outputs
            self._targets.open_generated(child, outputs)
            stream = EncodedStream(self._pool, self._quality, outputs.emit)
            cascade.streams.append(stream)
            retiler = Retiler(child.width, child.height, self._tile_px, stream.add_row)
            parent = self._plans[child.index - 1]
            fanout = Fanout(retiler, cascade.head)
            cascade.head = Downsampler(parent.width, parent.height, fanout, fanout.finish)
        return cascade

    def children(self, plan: LevelPlan) -> list[LevelPlan]:
        """The generated levels right below ``plan`` (down to the next source level)."""
        children: list[LevelPlan] = []
        for candidate in self._plans[plan.index + 1 :]:
            if candidate.source is not None:
                break
            children.append(candidate)
        return children

    def _base_plan(self, plan: LevelPlan) -> LevelPlan:
        """The source level a generated level is downsampled from, through its parents."""
        while plan.source is None and plan.parent is not None:
            plan = self._plans[plan.parent]
        return plan

    def _job(self, plan: LevelPlan, level: SourceLevel) -> None:
        """Decode a copied level and write the generated levels below it: runs on its own
        thread while the main thread copies."""
        cascade = self.cascade(plan)
        assert cascade.head is not None
        for row, (_, decoded, _) in enumerate(decoded_rows(self._pool, level)):
            if self.stopping.is_set():
                raise StoppedError
            cascade.head.push(band(level, row, decoded))
            for stream in cascade.streams:
                stream.collect(wait=False)
        cascade.head.finish()
        for stream in cascade.streams:
            stream.collect(wait=True)
