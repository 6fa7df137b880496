"""docs/cohorts.md works: its script (docs/examples/cohorts/cohorts.sh) runs against the stack's
catalog and answers from the slides a fresh tenant has there — facets, a filtered cohort, free
text, a CSV export, similar tissue by region and by whole slide.

The slides are catalogued from real events on the stack's Kafka, with their tile embeddings in
MinIO; two kinds of tissue (two clusters in embedding space) make the similarity answer checkable.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import subprocess
import sys
import time
from pathlib import Path
from uuid import UUID

import numpy as np
import pytest

from slidestream_contracts.embeddings import TileEmbeddings, embeddings_npz_bytes
from slidestream_contracts.events import ObjectRef, SlideEvent, SlideInferredV1
from slidestream_platform.objectstore import MinioObjectStore
from tests.support.catalog import STACK_ENV_FILE, SlideEvents, create_tenant, publish
from tests.support.stack import object_store

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[3]
SCRIPT = REPO_ROOT / "docs" / "examples" / "cohorts" / "cohorts.sh"
SLIDESTREAM = Path(sys.executable).with_name("slidestream")
EMBEDDING_MODEL = "tile-embedding"
DIMENSION = 64
TILES_PER_SLIDE = 48
TILE_L0_PX = 128
INDEX_TIMEOUT_S = 120


def tile_embeddings(kind: int, rng: np.random.Generator) -> TileEmbeddings:
    """A slide of one tissue kind: its tiles scattered round that kind's centre."""
    centre = np.zeros(DIMENSION, np.float32)
    centre[kind * 8 : kind * 8 + 8] = 1.0
    vectors = centre + rng.normal(0, 0.15, (TILES_PER_SLIDE, DIMENSION)).astype(np.float32)
    columns = 8
    origins = np.array(
        [((i % columns) * TILE_L0_PX, (i // columns) * TILE_L0_PX) for i in range(len(vectors))],
        np.int64,
    )
    return TileEmbeddings(vectors, origins, TILE_L0_PX)


def slide_history(
    store: MinioObjectStore,
    tenant: str,
    plan: tuple[int, str, float],
    rng: np.random.Generator,
) -> list[SlideEvent]:
    """uploaded → deidentified → converted → qc (pass) → two model runs, the embeddings in S3."""
    kind, organ, tumour = plan
    slide = SlideEvents(tenant)
    base = slide.inferred(5, model=EMBEDDING_MODEL, summary={})
    key = f"{tenant}/{slide.slide_id}/inference/{EMBEDDING_MODEL}/1/embeddings.npz"
    data = embeddings_npz_bytes(tile_embeddings(kind, rng))
    put = store.put_stream("derived", key, io.BytesIO(data), len(data))
    stored = ObjectRef(bucket="derived", key=key, sha256=put.sha256, size_bytes=len(data))
    embedding_run = SlideInferredV1(
        **{
            **base.model_dump(exclude={"embeddings", "slide_embedding", "scores"}),
            "embeddings": stored,
            "tile_count": TILES_PER_SLIDE,
        }
    )
    return [
        slide.uploaded(0, organ=organ),
        slide.deidentified(1),
        slide.converted(2),
        slide.qc(3, verdict="pass", reasons=()),
        slide.inferred(
            4, model="tissue-type", summary={"fraction:tumour": tumour, "fraction:stroma": 0.2}
        ),
        embedding_run,
    ]


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SLIDESTREAM), *args], capture_output=True, text=True, check=False, env=env
    )


def test_the_guide_answers_from_the_tenants_slides(
    stack_env: dict[str, str], tmp_path: Path
) -> None:
    tenant, token = create_tenant(STACK_ENV_FILE)
    rng = np.random.default_rng(15)
    store = object_store(stack_env)
    # Colon slides of kind 0 (tumour-rich and not), one colon slide of kind 1, one liver slide.
    plans = [(0, "colon", 0.6), (0, "colon", 0.5), (0, "colon", 0.1), (1, "colon", 0.4)]
    plans.append((1, "liver", 0.7))
    histories = [slide_history(store, tenant, plan, rng) for plan in plans]
    ids = [UUID(str(history[0].slide_id)) for history in histories]
    asyncio.run(publish(stack_env, [event for history in histories for event in history]))
    env = {
        "PATH": f"{SLIDESTREAM.parent}:/usr/bin:/bin",
        "SLIDESTREAM_TOKEN": token,
        "SEARCH_API": stack_env["SEARCH_API"],
        "SLIDE_ID": str(ids[0]),
        "OUT": str(tmp_path),
    }
    wait_catalogued(env, set(map(str, ids)))

    ran = subprocess.run(
        ["bash", str(SCRIPT)], capture_output=True, text=True, check=False, env=env, timeout=300
    )
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]

    with (tmp_path / "cohort.csv").open(encoding="utf-8") as handle:
        exported = {row["slide_id"] for row in csv.DictReader(handle)}
    assert exported == {str(i) for i in ids[:4]}  # the colon slides that passed QC

    similar = json.loads((tmp_path / "similar.json").read_text(encoding="utf-8"))
    found = [UUID(hit["slide_id"]) for hit in similar["items"]]
    assert ids[0] not in found  # the query slide itself is not an answer
    assert found[:2] and set(found[:2]) == set(ids[1:3])  # its own kind ranks first
    assert set(found) <= set(ids)  # never another tenant's slide


def wait_catalogued(env: dict[str, str], wanted: set[str]) -> None:
    deadline = time.monotonic() + INDEX_TIMEOUT_S
    while time.monotonic() < deadline:
        found = cli(env, "search", "--filter", f"model={EMBEDDING_MODEL}", "--all", "--json")
        if found.returncode == 0:
            seen = {
                hit["slide_id"]
                for line in found.stdout.splitlines()
                if line.startswith("{")
                for hit in json.loads(line)["items"]
            }
            if wanted <= seen:
                return
        time.sleep(1.0)
    raise AssertionError(f"slides not catalogued in {INDEX_TIMEOUT_S} s: {found.stdout[-500:]}")
