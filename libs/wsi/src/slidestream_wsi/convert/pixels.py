"""Streaming pixel work: bands of decoded rows in, encoded tiles out, memory bounded by a band.

A level that is re-encoded or downsampled is walked one source tile row at a time; each source
tile is decoded once. The decoded rows flow (push style) into:

* :class:`Retiler`: cuts rows into output tiles of the configured size and hands each finished
  tile row on, as views into the rows where a tile is whole (padding past the level's edge is
  background white);
* :class:`Downsampler`: halves the rows (mean of each 2x2 block, the last row or column repeated
  for odd sizes) and pushes the result into the next level's retiler and downsampler, so a chain
  of missing levels is generated in the same pass from exact pixels, never from a re-decoded
  lossy tile.

Memory per level is at most two output tile rows plus one source tile row of the level's width.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import imagecodecs
import numpy as np

from slidestream_wsi.pyramid import BACKGROUND_RGB, RGB_SAMPLES, Pixels

TileRowSink = Callable[[list[Pixels]], None]
BandSink = Callable[[Pixels], None]

JPEG_SUBSAMPLING = (2, 2)
"""Chroma subsampling of re-encoded tiles (4:2:0, what scanners write; DICOM YBR_FULL_422)."""


def encode_jpeg(tile: Pixels, quality: int) -> bytes:
    """Baseline JPEG (JFIF, YCbCr 4:2:0) of one tile; libjpeg-turbo output is deterministic.

    ``tile`` may be a view into a band (the retiler's tiles are): it is made contiguous here,
    on the encoding thread."""
    contiguous = np.ascontiguousarray(tile)
    return bytes(imagecodecs.jpeg8_encode(contiguous, level=quality, subsampling=JPEG_SUBSAMPLING))


class Retiler:
    """Cuts a stream of full-width bands into (tile x tile) tiles, one tile row at a time."""

    def __init__(self, width: int, height: int, tile_px: int, sink: TileRowSink) -> None:
        self.width = width
        self.height = height
        self.tile_px = tile_px
        self._sink = sink
        self._pending: list[Pixels] = []
        self._pending_rows = 0
        self._rows_done = 0

    def push(self, band: Pixels) -> None:
        self._pending.append(band)
        self._pending_rows += band.shape[0]
        while self._pending_rows >= self.tile_px:
            self._emit(self.tile_px)

    def finish(self) -> None:
        if self._pending_rows:
            self._emit(self._pending_rows)
        if self._rows_done != self.height:
            raise RuntimeError("retiler received a different number of rows than the level has")

    def _emit(self, rows: int) -> None:
        block = (
            np.concatenate(self._pending, axis=0) if len(self._pending) > 1 else self._pending[0]
        )
        head, rest = block[:rows], block[rows:]
        self._pending = [rest] if rest.shape[0] else []
        self._pending_rows = rest.shape[0]
        self._rows_done += rows
        size = self.tile_px
        tiles: list[Pixels] = []
        for x in range(0, self.width, size):
            part = head[:, x : x + size]
            if part.shape[0] == size and part.shape[1] == size:
                tiles.append(part)  # a view: the encoder makes it contiguous on its thread
            else:
                tile = np.full((size, size, RGB_SAMPLES), BACKGROUND_RGB, np.uint8)
                tile[: part.shape[0], : part.shape[1]] = part
                tiles.append(tile)
        self._sink(tiles)


class Downsampler:
    """Halves full-width bands of a level of ``width`` x ``height`` pixels (2x2 box filter).

    The output level is ceil(width / 2) x ceil(height / 2); an odd last row or column is
    averaged with itself (edge replication), so no source pixel is dropped.
    """

    def __init__(
        self, width: int, height: int, sink: BandSink, on_finish: Callable[[], None] | None = None
    ) -> None:
        self.width = width
        self._on_finish = on_finish
        self.height = height
        self.out_width = (width + 1) // 2
        self.out_height = (height + 1) // 2
        self._sink = sink
        self._carry: Pixels | None = None
        self._rows_in = 0

    def push(self, band: Pixels) -> None:
        self._rows_in += band.shape[0]
        if self._carry is not None:
            band = np.concatenate([self._carry, band], axis=0)
            self._carry = None
        even = band.shape[0] - band.shape[0] % 2
        if even < band.shape[0]:
            self._carry = band[even:]
        if even:
            self._sink(self._halve(band[:even]))

    def finish(self) -> None:
        if self._carry is not None:
            self._sink(self._halve(np.concatenate([self._carry, self._carry], axis=0)))
            self._carry = None
        if self._rows_in != self.height:
            raise RuntimeError("downsampler received a different number of rows than the level has")
        if self._on_finish is not None:
            self._on_finish()

    def _halve(self, block: Pixels) -> Pixels:
        return halve(block)


def halve(block: Pixels) -> Pixels:
    """(a + b + c + d + 2) >> 2 of every 2x2 block of an even number of rows; an odd last
    column is averaged with itself.

    OpenCV's INTER_AREA at exactly half size is this box filter with this rounding, in SIMD
    (``resizeAreaFast``), about 25x faster than the same sum in numpy.
    """
    height, width = block.shape[:2]
    even = width - width % 2
    out_height = height // 2
    if even == 0:
        last = block[:, -1].astype(np.uint16)
        return ((last[0::2] + last[1::2] + 1) >> 1).astype(np.uint8)[:, None, :]
    half = np.asarray(
        cv2.resize(block[:, :even], (even // 2, out_height), interpolation=cv2.INTER_AREA),
        dtype=np.uint8,
    )
    if even == width:
        return half
    # The replicated column pairs with itself: (2a + 2b + 2) >> 2 == (a + b + 1) >> 1.
    last = block[:, -1].astype(np.uint16)
    out = np.empty((out_height, even // 2 + 1, RGB_SAMPLES), np.uint8)
    out[:, :-1] = half
    out[:, -1] = (last[0::2] + last[1::2] + 1) >> 1
    return out


def fit_within(image: Pixels, max_px: int) -> Pixels:
    """``image`` shrunk (area average) so that neither side exceeds ``max_px``."""
    height, width = image.shape[:2]
    if max(height, width) <= max_px:
        return np.ascontiguousarray(image)
    scale = max_px / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), np.uint8)
