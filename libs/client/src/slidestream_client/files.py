"""Choosing the files to upload, hashing them, and reading ``--meta`` pairs."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable
from pathlib import Path

from slidestream_client.state import StateStore
from slidestream_contracts.slide_facts import SlideFactsError, parse_slide_facts

HASH_BLOCK_BYTES = 4 * 1024 * 1024
"""Large enough that hashlib (which releases the GIL above 2 KiB) keeps a core busy."""
_META_KEY = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


class InputError(ValueError):
    """A command-line input is wrong (missing path, malformed ``--meta``)."""


def _hidden(path: Path) -> bool:
    return path.name.startswith(".")


def collect_files(paths: Iterable[Path]) -> list[Path]:
    """The files named, and those under the directories named (recursively), hidden ones
    skipped, each once, in a stable order."""
    found: dict[Path, None] = {}
    for given in paths:
        path = given.expanduser()
        if path.is_file():
            found.setdefault(path.resolve(), None)
        elif path.is_dir():
            for candidate in sorted(_walk(path)):
                found.setdefault(candidate.resolve(), None)
        else:
            raise InputError(f"no such file or directory: {given}")
    return list(found)


def _walk(directory: Path) -> Iterable[Path]:
    for child in directory.iterdir():
        if _hidden(child):
            continue
        if child.is_dir():
            yield from _walk(child)
        elif child.is_file():
            yield child


def sha256_file(path: Path, on_progress: Callable[[int], None] = lambda _n: None) -> str:
    """The lowercase hex sha256 of a file, read in blocks (memory stays at one block)."""
    digest = hashlib.sha256()
    buffer = bytearray(HASH_BLOCK_BYTES)
    view = memoryview(buffer)
    done = 0
    with path.open("rb", buffering=0) as handle:
        while count := handle.readinto(view):
            digest.update(view[:count])
            done += count
            on_progress(done)
    return digest.hexdigest()


def cached_sha256(
    path: Path, store: StateStore, on_progress: Callable[[int], None] = lambda _n: None
) -> str:
    """:func:`sha256_file`, remembered by path, size and mtime so a rerun does not re-hash."""
    stat = path.stat()
    known = store.cached_sha256(path, stat.st_size, stat.st_mtime_ns)
    if known is not None:
        on_progress(stat.st_size)
        return known
    value = sha256_file(path, on_progress)
    after = path.stat()
    if (after.st_size, after.st_mtime_ns) == (stat.st_size, stat.st_mtime_ns):
        store.remember_sha256(path, stat.st_size, stat.st_mtime_ns, value)
    return value


def parse_meta(pairs: Iterable[str]) -> dict[str, str]:
    """``key=value`` pairs (the value may contain ``=``); a key given twice is an error, and so is
    a slide fact the server would refuse (``mpp_um=250nm``: the unit is named at once, before
    any file is hashed)."""
    meta: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep:
            raise InputError(f"--meta expects key=value, got {pair!r}")
        if not _META_KEY.fullmatch(key):
            raise InputError(f"--meta key {key!r} must be 1-64 letters, digits, '_', '.' or '-'")
        if key in meta:
            raise InputError(f"--meta key {key!r} given twice")
        meta[key] = value
    try:
        parse_slide_facts(meta)
    except SlideFactsError as error:
        raise InputError(f"--meta {error}") from error
    return meta


def meta_json(meta: dict[str, str]) -> str | None:
    """The ``meta`` upload metadata value: a JSON object, canonical (sorted, compact)."""
    if not meta:
        return None
    return json.dumps(meta, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
