"""The pass over one source level: its stored tiles copied into the outputs that keep them, its
decoded rows fed to the re-encoder and to the generated levels below it, and the pixel proof
of the copy taken on the way.

Tile row by tile row (or copy run by copy run when no pixels are needed): the pool decodes the
next row, and encodes what the retilers cut, while the calling thread copies the current row's
stored tiles. The TIFF writer pulls the level's tiles from :meth:`SourcePass.tiles`; the DICOM
writer is pushed the same tiles, so both outputs are written in the same pass.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field

from slidestream_wsi.convert.dicom_out import DicomInstanceWriter
from slidestream_wsi.convert.generation import Cascade, LevelGeneration, encodes
from slidestream_wsi.convert.model import ConversionOptions
from slidestream_wsi.convert.pixels import Retiler
from slidestream_wsi.convert.plan import LevelPlan
from slidestream_wsi.convert.tile_pool import EncodedStream, band, decoded_rows
from slidestream_wsi.convert.verify import sample_indices
from slidestream_wsi.errors import ConformanceError
from slidestream_wsi.pyramid import Pixels, RawTile, SourceLevel
from slidestream_wsi.pyramid.jpeg import jpeg_header_length, parse_jpeg_frame

_MAX_KNOWN_HEADERS = 64

_Row = tuple[Sequence[RawTile | None], list[Pixels], int]
"""Stored tiles of a tile row or copy run, its decoded tiles (when needed), its first index."""


@dataclass
class LevelOutcome:
    """What the pass over a level leaves for the proof and the report."""

    plan: LevelPlan
    sampled: list[int] = field(default_factory=list)
    source_hash: str | None = None
    seconds: float = 0.0


def check_copied_jpeg(frame: bytes, level: SourceLevel) -> None:
    """Every copied JPEG tile must be the baseline, full-size tile the level declares."""
    info = parse_jpeg_frame(frame)
    if (
        not info.baseline
        or info.components != 3
        or (info.width, info.height) != (level.tile_width, level.tile_height)
        or info.sampling[0] != level.coding.jpeg_frame
    ):
        raise ConformanceError("a copied JPEG tile differs from its level's frame header")


class CopiedJpegCheck:
    """:func:`check_copied_jpeg` for every copied tile, parsing each distinct header once.

    A tile whose bytes up to the end of its scan header equal those of a tile already checked
    has the same frame header, so the comparison stands for the parse (tiles of one level
    usually share one header; the tables are the level's)."""

    def __init__(self, level: SourceLevel) -> None:
        self._level = level
        self._headers: dict[int, set[bytes]] = {}

    def __call__(self, frame: RawTile) -> None:
        for length, headers in self._headers.items():
            if bytes(frame[:length]) in headers:
                return
        data = bytes(frame)
        check_copied_jpeg(data, self._level)
        if sum(len(headers) for headers in self._headers.values()) < _MAX_KNOWN_HEADERS:
            length = jpeg_header_length(data)
            self._headers.setdefault(length, set()).add(data[:length])


class PixelProof:
    """SHA-256 of the decoded pixels of a level's sampled tiles, in tile order: the same hash
    of the written outputs proves the copy lossless."""

    def __init__(self, level: SourceLevel, sampled: list[int]) -> None:
        self._level = level
        self._sampled = set(sampled)
        self._hash = hashlib.sha256()

    def add(self, raws: Sequence[RawTile | None], decoded: list[Pixels], first: int) -> None:
        """Hash the sampled tiles among ``raws`` (tiles ``first`` on), decoding them here
        unless the row was decoded already."""
        for position, raw in enumerate(raws):
            index = first + position
            if index in self._sampled:
                pixels = decoded[position] if decoded else self._level.decode(raw, index)
                self._hash.update(pixels.tobytes())

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


class SourcePass:
    """One pass over the tiles of ``plan.source`` in row-major order."""

    def __init__(
        self,
        plan: LevelPlan,
        dicom_writer: DicomInstanceWriter | None,
        outcome: LevelOutcome,
        *,
        pool: Executor,
        generation: LevelGeneration,
        options: ConversionOptions,
        tick: Callable[[int], None],
    ) -> None:
        assert plan.source is not None
        self._plan = plan
        self._level: SourceLevel = plan.source
        self._dicom_writer = dicom_writer
        self._outcome = outcome
        self._pool = pool
        self._generation = generation
        self._options = options
        self._tick = tick
        self._tiff_queue: deque[bytes] = deque()
        dicom, tiff = plan.dicom, plan.tiff
        self._dicom_copies = dicom_writer is not None and dicom is not None and dicom.mode == "copy"
        self._tiff_copies = tiff is not None and tiff.mode == "copy"
        self._copies = self._dicom_copies or self._tiff_copies
        copied_jpeg = self._copies and self._level.coding.compression == "jpeg"
        self._check = CopiedJpegCheck(self._level) if copied_jpeg else None

    def tiles(self) -> Iterator[bytes]:
        """Yields the level's TIFF tiles; pushes its DICOM frames; feeds the generated levels
        below it unless a generation job does that on its own thread."""
        retiler, streams = self._own_encoding()
        cascade = Cascade()
        if not self._generation.has_job(self._plan):
            cascade = self._generation.cascade(self._plan)
        streams += cascade.streams
        needs_pixels = retiler is not None or cascade.head is not None
        proof = self._start_proof()
        for row, (raws, decoded, first) in enumerate(self._rows(needs_pixels)):
            self._copy(raws)
            if proof is not None:
                proof.add(raws, decoded, first)
            self._tick(len(raws))
            if needs_pixels:
                pixels = band(self._level, row, decoded)
                if retiler is not None:
                    retiler.push(pixels)
                if cascade.head is not None:
                    cascade.head.push(pixels)
            for stream in streams:
                stream.collect(wait=False)
            yield from self._drain()
        if retiler is not None:
            retiler.finish()
        if cascade.head is not None:
            cascade.head.finish()
        for stream in streams:
            stream.collect(wait=True)
        yield from self._drain()
        if proof is not None:
            self._outcome.source_hash = proof.hexdigest()

    def _own_encoding(self) -> tuple[Retiler | None, list[EncodedStream]]:
        """The retiler and encoder of the level's own re-encoded outputs, if any."""
        if not encodes(self._plan):
            return None, []
        encoded = EncodedStream(self._pool, self._options.jpeg_quality, self._emit_encoded)
        plan = self._plan
        retiler = Retiler(plan.width, plan.height, self._options.tile_size_px, encoded.add_row)
        return retiler, [encoded]

    def _emit_encoded(self, frames: list[bytes]) -> None:
        dicom, tiff = self._plan.dicom, self._plan.tiff
        if self._dicom_writer is not None and dicom is not None and dicom.mode == "encode":
            self._dicom_writer.add_frames(frames)
        if tiff is not None and tiff.mode == "encode":
            self._tiff_queue.extend(frames)

    def _rows(self, needs_pixels: bool) -> Iterator[_Row]:
        """Decoded tile rows when pixels are needed, else copy runs of stored tiles."""
        level = self._level
        if needs_pixels:
            return decoded_rows(self._pool, level)
        # Views into a buffer the next run overwrites: each run is written out (and its TIFF
        # tiles taken) before the next is read. Only the proof's sample is decoded, here: the
        # pool may be busy generating.
        return ((level.read_raw_views(first, last), [], first) for first, last in level.copy_runs())

    def _start_proof(self) -> PixelProof | None:
        if not self._copies:
            return None
        level = self._level
        if self._options.verify == "full":
            count = level.tile_count
        else:
            count = min(level.tile_count, self._options.sample_tiles_per_level)
        self._outcome.sampled = sample_indices(level.tile_count, count)
        return PixelProof(level, self._outcome.sampled)

    def _copy(self, raws: Sequence[RawTile | None]) -> None:
        if not self._copies:
            return
        frames: list[RawTile] = []
        for raw in raws:
            if raw is None:
                continue
            frame = self._level.copy_bytes(raw)
            if self._check is not None:
                self._check(frame)
            frames.append(frame)
        if self._dicom_copies and self._dicom_writer is not None:
            self._dicom_writer.add_frames(frames)
        if self._tiff_copies:
            # tifffile takes bytes (it reads anything else as pixels).
            self._tiff_queue.extend(bytes(frame) for frame in frames)

    def _drain(self) -> Iterator[bytes]:
        while self._tiff_queue:
            yield self._tiff_queue.popleft()
