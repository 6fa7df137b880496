"""Similarity search at catalogue scale: Milvus Lite's server through the catalog's adapter vs
FAISS used directly, same vectors, same queries, same run.

* the vectors: ``--slides`` mosaics of 32 tiles (30 000 slides: 960 000 vectors, plus one slide
  embedding each: 990 000 rows; dimension 64, the reference ``tile-embedding``), half the slides
  per tenant. They are built around REAL embeddings: the 1 409 held-out tiles of the five
  planted tissue types, embedded by ``tile-embedding`` on the stack's Triton. A hierarchy gives
  them the structure of real data (clusters within clusters, not isotropic noise): 4 000
  "morphology patterns", each a real tile's embedding plus a Gaussian offset (norm ≈ 0.5); each
  slide draws a dominant tissue type and one or two others, a staining offset of its own (norm ≈
  0.1) and its 32 tiles from patterns of its types (dominant 70 %), each with tile noise (norm ≈
  0.25); every vector is L2-normalised (cosine). Queries: mosaic tiles of 400 further slides
  generated the same way (not indexed), alternating tenants;
* ``milvus``: ``MilvusVectorIndex`` (slidestream_catalog.adapters.vectors) on a Milvus Lite
  server process (its own, in a temporary folder): upsert in batches of 320 slides, IVF_FLAT with
  ``nlist`` = 4·√rows, ``nprobe`` swept upward until recall@10 ≥ 0.95 (the first that reaches it is
  the one timed), filter ``tenant == … && generation == …``, k = 10, one query at a time;
* ``exact``: FAISS ``IndexFlatIP`` per tenant on the same normalised vectors (the ground truth of
  recall@10);
* ``hnsw``: FAISS ``IndexHNSWFlat`` per tenant (M 32, efConstruction 64), ``efSearch`` swept the
  same way, one query at a time: the engine-free ceiling on this machine.

The same is repeated on the first 100 000 rows' slides to state how p95 grows with the collection.

Usage: ``make bench-search-vectors`` (``python -m tests.bench.bench_search_vectors [--slides N]``;
needs the stack's Triton for the real embeddings).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import faiss
import numpy as np
import numpy.typing as npt

from slidestream_catalog.adapters.vectors import (
    IndexKey,
    MilvusVectorIndex,
    VectorRow,
)
from slidestream_devstack.envfile import parse_env
from slidestream_devstack.paths import StackPaths, find_repo_root
from tests.support.bench_report import write_section
from tests.support.milvus import milvus_server
from tests.support.tissue_embeddings import TissueTiles, embed_held_out_tiles

DIMENSION: Final = 64
TILES_PER_SLIDE: Final = 32
PATTERNS: Final = 4000
PATTERN_OFFSET_NORM: Final = 0.5
SLIDE_OFFSET_NORM: Final = 0.1
TILE_NOISE_NORM: Final = 0.25
DOMINANT_SHARE: Final = 0.7
TENANTS: Final = ("tenant-a", "tenant-b")
GENERATION: Final = 1
K: Final = 10
RECALL_GOAL: Final = 0.95
P95_GOAL_MS: Final = 50.0
HNSW_RATIO_GOAL: Final = 2.0
INGEST_SLIDES_PER_CALL: Final = 320
NPROBES: Final = (16, 64, 256)
EF_SEARCHES: Final = (32, 64, 128, 256, 512, 1024)
HNSW_M: Final = 32
HNSW_EF_CONSTRUCTION: Final = 64
SMALL_ROWS: Final = 100_000
SEED: Final = 20261206

Floats = npt.NDArray[np.float32]


@dataclass
class Corpus:
    vectors: Floats
    tenant: npt.NDArray[np.int64]
    slide: npt.NDArray[np.int64]
    kind: list[str]


def unit(array: Floats) -> Floats:
    return (array / np.linalg.norm(array, axis=-1, keepdims=True)).astype(np.float32)


def gaussian(rng: np.random.Generator, shape: tuple[int, ...], norm: float) -> Floats:
    # Per-dimension sigma so that the offset's expected length is ``norm``.
    return rng.normal(0.0, norm / np.sqrt(DIMENSION), shape).astype(np.float32)


def generate(tissue: TissueTiles, slides: int, rng: np.random.Generator) -> Corpus:
    """Mosaic tiles and slide embeddings of ``slides`` slides (see the module docstring)."""
    types = len(tissue.labels)
    bases = rng.integers(len(tissue.embeddings), size=PATTERNS)
    patterns = unit(
        tissue.embeddings[bases] + gaussian(rng, (PATTERNS, DIMENSION), PATTERN_OFFSET_NORM)
    )
    by_type = [np.flatnonzero(tissue.label[bases] == t) for t in range(types)]
    vectors, tenant, slide, kind = [], [], [], []
    for number in range(slides):
        dominant = int(rng.integers(types))
        others = rng.choice(
            [t for t in range(types) if t != dominant], size=int(rng.integers(1, 3))
        )
        picks_type = np.where(
            rng.random(TILES_PER_SLIDE) < DOMINANT_SHARE,
            dominant,
            rng.choice(others, TILES_PER_SLIDE),
        )
        chosen = np.array([rng.choice(by_type[t]) for t in picks_type])
        offset = gaussian(rng, (1, DIMENSION), SLIDE_OFFSET_NORM)
        tiles = unit(
            patterns[chosen] + offset + gaussian(rng, (TILES_PER_SLIDE, DIMENSION), TILE_NOISE_NORM)
        )
        vectors.append(np.vstack([tiles, unit(tiles.mean(axis=0, keepdims=True))]))
        tenant += [number % len(TENANTS)] * (TILES_PER_SLIDE + 1)
        slide += [number] * (TILES_PER_SLIDE + 1)
        kind += ["tile"] * TILES_PER_SLIDE + ["slide"]
    return Corpus(np.vstack(vectors), np.asarray(tenant), np.asarray(slide), kind)


def rows_of(corpus: Corpus, start: int, stop: int) -> list[VectorRow]:
    """Rows ``start:stop``; ``x`` carries the row number (recall compares row identities)."""
    rows = []
    counters: dict[int, int] = {}
    for row in range(start, stop):
        slide = int(corpus.slide[row])
        index = counters.get(slide, 0) if corpus.kind[row] == "tile" else 0
        if corpus.kind[row] == "tile":
            counters[slide] = index + 1
        rows.append(
            VectorRow(
                tenant=TENANTS[int(corpus.tenant[row])],
                slide_id=f"slide-{slide:06d}",
                kind="tile" if corpus.kind[row] == "tile" else "slide",
                index=index,
                x=row,
                y=0,
                size_px=224,
                generation=GENERATION,
                vector=corpus.vectors[row],
            )
        )
    return rows


def percentiles_ms(seconds: list[float]) -> tuple[float, float]:
    ordered = sorted(seconds)
    return 1000 * statistics.median(ordered), 1000 * ordered[int(0.95 * (len(ordered) - 1))]


def exact_truth(
    corpus: Corpus, rows: int, queries: Floats, query_tenant: npt.NDArray[np.int64]
) -> list[set[int]]:
    truth: list[set[int]] = [set() for _ in range(len(queries))]
    for tenant in range(len(TENANTS)):
        members = np.flatnonzero(corpus.tenant[:rows] == tenant)
        flat = faiss.IndexFlatIP(DIMENSION)
        flat.add(corpus.vectors[members])
        asked = np.flatnonzero(query_tenant == tenant)
        _, found = flat.search(queries[asked], K)
        for position, answer in zip(asked, found, strict=True):
            truth[position] = {int(members[i]) for i in answer}
    return truth


def recall(found: list[set[int]], truth: list[set[int]]) -> float:
    return float(np.mean([len(f & t) / K for f, t in zip(found, truth, strict=True)]))


@dataclass
class Measure:
    setting: str
    recall: float
    p50_ms: float
    p95_ms: float


async def milvus_queries(
    index: MilvusVectorIndex, key: IndexKey, queries: Floats, tenants: npt.NDArray[np.int64]
) -> tuple[list[set[int]], list[float]]:
    found, seconds = [], []
    for query, tenant in zip(queries, tenants, strict=True):
        started = time.perf_counter()
        (answer,) = await index.search(
            key, query[None, :], tenant=TENANTS[int(tenant)], generation=GENERATION, limit=K
        )
        seconds.append(time.perf_counter() - started)
        found.append({hit.x for hit in answer})
    return found, seconds


async def milvus_run(
    uri: str,
    corpus: Corpus,
    rows: int,
    queries: Floats,
    tenants: npt.NDArray[np.int64],
    truth: list[set[int]],
) -> dict[str, object]:
    """Ingest ``rows`` once, then time each index type on them (IVF_FLAT's nprobe swept)."""
    key = IndexKey(f"bench-{rows}", "1", DIMENSION)
    loader = MilvusVectorIndex(uri)
    started = time.perf_counter()
    step = INGEST_SLIDES_PER_CALL * (TILES_PER_SLIDE + 1)
    for start in range(0, rows, step):
        await loader.upsert(key, rows_of(corpus, start, min(rows, start + step)))
    ingest_s = time.perf_counter() - started
    loader.close()
    print(f"milvus {rows}: ingest {ingest_s:.0f} s", file=sys.stderr)
    builds: dict[str, tuple[float, int]] = {}
    sweep: list[Measure] = []
    for index_type, nprobes in (("IVF_FLAT", NPROBES), ("FLAT", (0,))):
        builder = MilvusVectorIndex(uri, index_type=index_type)
        started = time.perf_counter()
        nlist = await builder.tune_index(key)
        builds[index_type] = (time.perf_counter() - started, nlist)
        builder.close()
        for nprobe in nprobes:
            index = MilvusVectorIndex(uri, index_type=index_type, nprobe=max(nprobe, 1))
            await milvus_queries(index, key, queries[:20], tenants[:20])  # warm the channel
            found, seconds = await milvus_queries(index, key, queries, tenants)
            index.close()
            setting = f"IVF_FLAT nlist {nlist} nprobe {nprobe}" if nprobe else "FLAT"
            sweep.append(Measure(setting, recall(found, truth), *percentiles_ms(seconds)))
            print(f"  {sweep[-1]}", file=sys.stderr)
            if sweep[-1].recall >= RECALL_GOAL:
                break
    return {"rows": rows, "ingest_s": ingest_s, "builds": builds, "sweep": sweep}


def hnsw_run(
    corpus: Corpus, queries: Floats, tenants: npt.NDArray[np.int64], truth: list[set[int]]
) -> dict[str, object]:
    indexes, members = [], []
    started = time.perf_counter()
    for tenant in range(len(TENANTS)):
        own = np.flatnonzero(corpus.tenant == tenant)
        index = faiss.IndexHNSWFlat(DIMENSION, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.add(corpus.vectors[own])
        indexes.append(index)
        members.append(own)
    build_s = time.perf_counter() - started
    print(f"hnsw: built in {build_s:.0f} s", file=sys.stderr)
    sweep: list[Measure] = []
    for ef in EF_SEARCHES:
        found, seconds = [], []
        for query, tenant in zip(queries, tenants, strict=True):
            index = indexes[int(tenant)]
            index.hnsw.efSearch = ef
            began = time.perf_counter()
            _, answer = index.search(query[None, :], K)
            seconds.append(time.perf_counter() - began)
            found.append({int(members[int(tenant)][i]) for i in answer[0] if i >= 0})
        sweep.append(Measure(f"efSearch {ef}", recall(found, truth), *percentiles_ms(seconds)))
        print(f"  {sweep[-1]}", file=sys.stderr)
        if sweep[-1].recall >= RECALL_GOAL:
            break
    return {"build_s": build_s, "sweep": sweep}


def chosen(sweep: list[Measure]) -> Measure:
    """The fastest (p95) setting reaching the recall goal; the most exact one when none does."""
    good = [m for m in sweep if m.recall >= RECALL_GOAL]
    return min(good, key=lambda m: m.p95_ms) if good else max(sweep, key=lambda m: m.recall)


def table(rows: list[tuple[str, ...]]) -> str:
    header = (
        "| engine | rows | setting | recall@10 | p50 ms | p95 ms |\n|---|---|---|---|---|---|\n"
    )
    return header + "\n".join("| " + " | ".join(r) + " |" for r in rows)


def build_lines(result: dict) -> str:
    rate = result["rows"] / result["ingest_s"]
    builds = ", ".join(
        f"{kind} {seconds:.1f} s" + (f" (nlist {nlist})" if nlist else "")
        for kind, (seconds, nlist) in result["builds"].items()
    )
    return (
        f"| milvus, {result['rows']:,} rows | {result['ingest_s']:.0f} s | {rate:,.0f} | {builds} |"
    )


def measure_rows(corpus: Corpus, small: dict, large: dict, hnsw: dict) -> list[tuple[str, ...]]:
    """One table row per measured setting: Milvus at both sizes, then FAISS HNSW."""
    runs = [("milvus", result["rows"], m, 1) for result in (small, large) for m in result["sweep"]]
    runs += [("faiss hnsw", len(corpus.vectors), m, 2) for m in hnsw["sweep"]]
    return [
        (
            engine,
            f"{rows:,}",
            m.setting,
            f"{m.recall:.3f}",
            f"{m.p50_ms:.{d}f}",
            f"{m.p95_ms:.{d}f}",
        )
        for engine, rows, m, d in runs
    ]


def report(
    args: argparse.Namespace, corpus: Corpus, small: dict, large: dict, hnsw: dict, queries: int
) -> str:
    lines = measure_rows(corpus, small, large, hnsw)
    big, little, ceiling = chosen(large["sweep"]), chosen(small["sweep"]), chosen(hnsw["sweep"])
    ratio = big.p95_ms / max(ceiling.p95_ms, 1e-9)
    goals = [
        ("recall@10 ≥ 0.95 (Milvus, 1 M)", f"{big.recall:.3f}", big.recall >= RECALL_GOAL),
        ("p95 ≤ 50 ms (Milvus, 1 M)", f"{big.p95_ms:.1f} ms", big.p95_ms <= P95_GOAL_MS),
        (
            "p95 ≤ 2× FAISS HNSW p95",
            f"{ratio:.1f}× ({ceiling.p95_ms:.2f} ms)",
            ratio <= HNSW_RATIO_GOAL,
        ),
    ]
    goal_lines = "\n".join(
        f"| {name} | {value} | {'met' if ok else 'MISSED'} |" for name, value, ok in goals
    )
    rows = len(corpus.vectors)
    growth = big.p95_ms / max(little.p95_ms, 1e-9)
    return f"""
{args.slides:,} slides × ({TILES_PER_SLIDE} mosaic tiles + 1 slide embedding) = {rows:,} vectors,
dimension {DIMENSION}, 2 tenants (half each), k = {K}, every query filtered by its tenant;
{queries} queries (mosaic tiles of unindexed slides). Vectors: a hierarchy around the real
`tile-embedding` embeddings of the 1 409 held-out tiles of the five planted tissue types (Triton),
see the module docstring of `tests/bench/bench_search_vectors.py`. Recall@10 against exact FAISS
`IndexFlatIP` per tenant, same run. Milvus: Milvus Lite 2.5.1's server process through
`MilvusVectorIndex` (gRPC, one query at a time, COSINE), the same rows indexed as IVF_FLAT (nprobe
swept until recall 0.95) and as FLAT; the goals use the fastest setting that reaches recall 0.95
(the most exact one when none does).

| engine | ingest | vectors/s | index build |
|---|---|---|---|
{build_lines(small)}
{build_lines(large)}
| faiss hnsw (M {HNSW_M}, efConstruction {HNSW_EF_CONSTRUCTION}) | — | — | {hnsw["build_s"]:.1f} s |

{table(lines)}

p95 growth from {small["rows"]:,} to {large["rows"]:,} rows (Milvus, each at its chosen setting:
{little.setting} / {big.setting}): {little.p95_ms:.1f} ms → {big.p95_ms:.1f} ms, **{growth:.2f}×**.

| goal | measured | |
|---|---|---|
{goal_lines}

What this shows about Milvus Lite 2.5.1: its server keeps every row in growing segments and
answers them brute force until a segment is large enough for its built-in interim IVF index;
from then on recall is whatever that index gives, and the collection's own `nprobe` changes
nothing (the IVF_FLAT rows above: the same recall at every nprobe). FLAT is exact at every size,
and its latency grows linearly with the rows. So the catalog defaults to FLAT
(`MILVUS_INDEX_TYPE`), which keeps recall at 1.0; at a million mosaic vectors on this machine
that costs the p95 above, and the goals against FAISS HNSW need a Milvus cluster (the chart's
optional dependency), whose sealed segments are indexed as configured.
"""


async def main_async(args: argparse.Namespace) -> None:
    paths = StackPaths(find_repo_root(None))
    env = parse_env(paths.env_file.read_text(encoding="utf-8"))
    tissue = await embed_held_out_tiles(env)
    rng = np.random.default_rng(SEED)
    started = time.perf_counter()
    corpus = generate(tissue, args.slides, rng)
    probe = generate(tissue, args.queries // 2, rng)
    picks = rng.choice(
        np.flatnonzero(np.asarray(probe.kind) == "tile"), size=args.queries, replace=False
    )
    queries = probe.vectors[picks]
    tenants = np.arange(args.queries) % len(TENANTS)
    print(
        f"generated {len(corpus.vectors):,} vectors in {time.perf_counter() - started:.0f} s",
        file=sys.stderr,
    )
    small_rows = min(
        SMALL_ROWS // (TILES_PER_SLIDE + 1) * (TILES_PER_SLIDE + 1), len(corpus.vectors)
    )
    small_truth = exact_truth(corpus, small_rows, queries, tenants)
    truth = exact_truth(corpus, len(corpus.vectors), queries, tenants)
    (paths.local / "bench").mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(dir=paths.local / "bench") as folder,
        milvus_server(Path(folder)) as uri,
    ):
        small = await milvus_run(uri, corpus, small_rows, queries, tenants, small_truth)
        large = await milvus_run(uri, corpus, len(corpus.vectors), queries, tenants, truth)
    hnsw = hnsw_run(corpus, queries, tenants, truth)
    body = report(args, corpus, small, large, hnsw, args.queries)
    print(body)
    if args.write:
        write_section("search-vectors", "make bench-search-vectors", body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slides", type=int, default=30_000)
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--no-write", dest="write", action="store_false")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
