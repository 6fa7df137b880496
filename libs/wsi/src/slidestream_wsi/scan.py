"""Residual-PHI scan of a de-identified output.

Two views, both needed: the metadata a reader sees (every string value of every tag, element or
XML attribute, and which associated images remain), and the raw bytes (identifiers may hide in
orphaned bytes no reader shows). The byte scan streams the file in chunks that overlap by the
longest pattern, matches case-insensitively, in UTF-8/Latin-1 and in UTF-16LE (Windows software
writes UTF-16 strings), and reports only token indices and offsets: it never prints a token.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slidestream_wsi.detect import Container, detect_format
from slidestream_wsi.errors import SlideError
from slidestream_wsi.limits import DEFAULT_LIMITS, SlideLimits
from slidestream_wsi.source import SourceLike
from slidestream_wsi.tiff.patch import PatchedStream

SCAN_CHUNK_BYTES = 8 * 1024 * 1024
"""Bytes read per step of the byte scan."""


@dataclass(frozen=True, slots=True)
class TokenHit:
    """One occurrence of a token in a file (the token itself is not kept here)."""

    token_index: int
    offset: int
    encoding: str


@dataclass(frozen=True, slots=True)
class MetadataString:
    """One string value found in a slide's metadata."""

    location: str
    """Where it is (``ifd0.ImageDescription``, ``dicom.(0010,0010)``...), never the value."""
    value: str

    def __repr__(self) -> str:  # values may be patient data: keep them out of logs and reprs
        return f"MetadataString(location={self.location!r}, value=<{len(self.value)} chars>)"


@dataclass(frozen=True, slots=True)
class MetadataInventory:
    strings: tuple[MetadataString, ...]
    associated_images: tuple[str, ...]
    """Roles of the images that are not pyramid levels (label, macro, thumbnail...)."""


def _variants(token: str) -> list[tuple[bytes, str]]:
    forms = {token, token.lower(), token.upper(), token.casefold()}
    out: list[tuple[bytes, str]] = []
    for form in sorted(forms):
        seen: set[bytes] = set()
        for encoding in ("utf-8", "latin-1", "utf-16-le"):
            try:
                encoded = form.encode(encoding)
            except UnicodeEncodeError:
                continue
            if encoded not in seen:  # ASCII is the same in UTF-8 and Latin-1
                seen.add(encoded)
                out.append((encoded, encoding))
    return out


class ByteTokenScanner:
    """Streaming byte scan: :meth:`feed` consecutive chunks of one object, then read :meth:`hits`.

    Matches are ASCII-case-insensitive (like ``bytes.lower()`` or ``re.IGNORECASE`` on bytes), in
    UTF-8/Latin-1 and UTF-16LE, overlapping ones included; offsets are absolute. Chunks overlap by
    the longest pattern minus one byte, so a match across a chunk boundary is found once. The
    matching runs in Hyperscan (Intel's multi-literal matcher, ~20x faster than one ``find`` per
    pattern here) when its wheel is installed, else one lowering plus a C-speed ``find`` per
    pattern; both report exactly the same hits (the tests compare them).
    """

    def __init__(self, tokens: Sequence[str], *, use_hyperscan: bool | None = None) -> None:
        lookup: dict[bytes, list[tuple[int, str]]] = {}
        for index, token in enumerate(tokens):
            if not token:
                raise ValueError("empty token")
            for pattern, encoding in _variants(token):
                entries = lookup.setdefault(pattern.lower(), [])
                if (index, encoding) not in entries:
                    entries.append((index, encoding))
        self._patterns = sorted(lookup, key=len, reverse=True)
        self._owners = [lookup[p] for p in self._patterns]
        self._overlap = max((len(p) for p in self._patterns), default=1) - 1
        self._hits: set[tuple[int, int, str]] = set()
        self._tail = b""
        self._tail_start = 0
        wanted = _hyperscan_available() if use_hyperscan is None else use_hyperscan
        self._database = _hyperscan_database(self._patterns) if wanted and self._patterns else None

    @property
    def uses_hyperscan(self) -> bool:
        return self._database is not None

    def feed(self, chunk: bytes | memoryview) -> None:
        """Scan the next ``len(chunk)`` bytes of the object."""
        if not self._patterns or not len(chunk):
            return
        data = bytes(chunk)
        chunk_start = self._tail_start + len(self._tail)
        if self._tail:
            # Only the seam is joined (not the whole chunk): a match across it starts in the
            # tail and ends within ``overlap`` bytes of the chunk. Hits seen twice collapse.
            self._record(self._tail + data[: self._overlap], self._tail_start)
        self._record(data, chunk_start)
        if self._overlap == 0:
            self._tail = b""
        elif len(data) >= self._overlap:
            self._tail = data[len(data) - self._overlap :]
        else:
            self._tail = (self._tail + data)[-self._overlap :]
        self._tail_start = chunk_start + len(data) - len(self._tail)

    def _record(self, buffer: bytes, buffer_start: int) -> None:
        for pattern_id, start in self._matches(buffer):
            for token_index, encoding in self._owners[pattern_id]:
                self._hits.add((token_index, buffer_start + start, encoding))

    def _matches(self, buffer: bytes) -> list[tuple[int, int]]:
        found: list[tuple[int, int]] = []
        if self._database is not None:
            lengths = [len(p) for p in self._patterns]

            def on_match(pattern_id: int, _from: int, to: int, _flags: int, _ctx: object) -> None:
                found.append((pattern_id, to - lengths[pattern_id]))

            self._database.scan(buffer, match_event_handler=on_match)
            return found
        # bytes.lower() folds ASCII only, like re.IGNORECASE on bytes; one lowering and a C-speed
        # find per pattern is ~50x faster than a case-insensitive alternation.
        lowered = buffer.lower()
        for pattern_id, pattern in enumerate(self._patterns):
            start = lowered.find(pattern)
            while start != -1:
                found.append((pattern_id, start))
                start = lowered.find(pattern, start + 1)
        return found

    def hits(self) -> list[TokenHit]:
        """Every hit so far, by offset (matches seen again in an overlap count once)."""
        ordered = sorted(self._hits, key=lambda h: (h[1], h[0], h[2]))
        return [TokenHit(i, o, e) for i, o, e in ordered]


def _hyperscan_available() -> bool:
    return importlib.util.find_spec("hyperscan") is not None


def _hyperscan_database(patterns: Sequence[bytes]) -> Any:
    import hyperscan

    # Every byte escaped: the patterns are literals (NUL bytes of UTF-16 included); CASELESS
    # folds ASCII letters only, the same folding as bytes.lower().
    expressions = [b"".join(b"\\x%02x" % byte for byte in pattern) for pattern in patterns]
    database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    database.compile(
        expressions=expressions,
        ids=list(range(len(expressions))),
        elements=len(expressions),
        flags=[hyperscan.HS_FLAG_CASELESS] * len(expressions),
    )
    return database


def scan_bytes_for_tokens(
    path: Path, tokens: Sequence[str], chunk_bytes: int = SCAN_CHUNK_BYTES
) -> list[TokenHit]:
    """Every occurrence of any token in the file's bytes (case-insensitive, several encodings)."""
    scanner = ByteTokenScanner(tokens)
    with path.open("rb") as fh:
        while chunk := fh.read(chunk_bytes):
            scanner.feed(chunk)
    return scanner.hits()


@dataclass(frozen=True, slots=True)
class StreamedOutput:
    """One pass over an input and the output its patches make of it."""

    input_sha256: str
    input_size_bytes: int
    output_sha256: str
    output_size_bytes: int
    hits: tuple[TokenHit, ...]
    """Byte-scan hits in the output (offsets in the output)."""


def stream_patched_output(
    chunks: Iterable[bytes],
    input_size_bytes: int,
    patches: Sequence[tuple[int, bytes]],
    tokens: Sequence[str],
) -> StreamedOutput:
    """Hash the input, and hash and byte-scan the output (the input with ``patches`` over it,
    :class:`~slidestream_wsi.tiff.patch.PatchedStream`), in one pass over the input's chunks.

    The two digests run on worker threads (hashlib releases the GIL on large buffers), one chunk
    behind the scan, so the pass costs about its slowest stage, not the sum. An input of another
    size than ``input_size_bytes`` raises :class:`ValueError`.
    """
    scanner = ByteTokenScanner(tokens)
    input_digest, output_digest = hashlib.sha256(), hashlib.sha256()
    stream = PatchedStream(input_size_bytes, patches)
    input_size = output_size = 0
    with ThreadPoolExecutor(2, thread_name_prefix="sha256") as hashers:
        pending: list[Future[None]] = []

        def take(original: bytes, output: bytes) -> None:
            nonlocal pending, output_size
            for previous in pending:
                previous.result()  # keeps each digest in order
            pending = [hashers.submit(output_digest.update, output)]
            if original:
                pending.append(hashers.submit(input_digest.update, original))
            if tokens:
                scanner.feed(output)
            output_size += len(output)

        for chunk in chunks:
            input_size += len(chunk)
            take(chunk, stream.apply(chunk))
        take(b"", stream.finish())
        for previous in pending:
            previous.result()
    return StreamedOutput(
        input_digest.hexdigest(),
        input_size,
        output_digest.hexdigest(),
        output_size,
        tuple(scanner.hits()) if tokens else (),
    )


def list_metadata(path: SourceLike, limits: SlideLimits = DEFAULT_LIMITS) -> MetadataInventory:
    """All metadata strings and remaining associated images of a TIFF or DICOM slide (a
    TIFF-based one from any :class:`~slidestream_wsi.source.SlideSource`)."""
    detected = detect_format(path, limits)
    if detected.container is Container.DICOM:
        from slidestream_wsi.dicom.inventory import dicom_inventory

        if not isinstance(path, Path):
            raise ValueError("DICOM metadata is listed from a file")
        return dicom_inventory(path, limits)
    if detected.container is Container.ZIP:
        raise SlideError("list the metadata of an archive's members one by one")
    from slidestream_wsi.tiff.inventory import tiff_inventory

    return tiff_inventory(path, detected.format, limits)
