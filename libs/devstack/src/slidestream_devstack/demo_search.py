"""The demo's last act: the catalogue searched as a researcher would (``slidestream search``).

1. slides with planted tissue types (``slidestream_samples.tissue_types``) join the upload, their
   planted truth (one class per level-0 pixel) kept beside them, never uploaded;
2. once every analysed slide is in the catalogue, the facet table of the demo tenant's slides;
3. "slides similar to this region": a square of planted ``tumour`` on one slide, and for every
   slide found the planted tissue type under its best-matching tile — the answer checked
   against the truth, not eyeballed.
"""

from __future__ import annotations

import csv
import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from rich.console import Console
from rich.table import Table

from slidestream_devstack.process import child_env

TISSUE_TYPE_SEEDS = (101, 102, 103)
"""Slides with planted tissue types (each has every type in its own regions)."""
TISSUE_TYPE_WIDTH_PX = 2048
TISSUE_TYPE_HEIGHT_PX = 1536
QUERY_TYPE = "tumour"
QUERY_SIDE_PX = 256
"""Side of the query square in level-0 pixels (two tiles of the reference embedding model)."""
EMBEDDING_MODEL = "tile-embedding"
INDEX_TIMEOUT_S = 120.0
INDEX_POLL_S = 1.0


@dataclass(frozen=True, slots=True)
class PlantedSlide:
    path: Path
    truth: Path
    """``.npy`` of the level-0 class map (index into ``TISSUE_TYPES``, 255 off the section)."""


def tissue_type_slides(folder: Path, work: Path) -> list[PlantedSlide]:
    """The planted tissue-type slides (made once; reused when already there)."""
    from slidestream_samples import tissue_types  # late: OpenCV is only needed here

    work.mkdir(parents=True, exist_ok=True)
    made: list[PlantedSlide] = []
    for seed in TISSUE_TYPE_SEEDS:
        path = folder / f"tissue-types-{seed}.tiff"
        truth = work / f"tissue-types-{seed}.regions.npy"
        if not (path.exists() and truth.exists()):
            slide = tissue_types.write_tissue_type_slide(
                path, seed, TISSUE_TYPE_WIDTH_PX, TISSUE_TYPE_HEIGHT_PX
            )
            np.save(truth, slide.regions)
        made.append(PlantedSlide(path, truth))
    return made


COHORT = {"species": "human", "organ": "colon", "stain": "H&E", "project": "demo-cohort"}
"""The planted slides' manifest labels: what the facet table counts."""


def write_manifest(slides: Sequence[PlantedSlide], target: Path) -> Path:
    """A batch manifest for the planted slides: one invented case per slide (the case ids are
    pseudonymised by de-identification; the catalogue only ever sees the pseudonyms)."""
    with target.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["filename", "sha256", "case_id", "specimen_id", *COHORT])
        for index, slide in enumerate(slides):
            digest = hashlib.sha256(slide.path.read_bytes()).hexdigest()
            case = f"DEMO-CASE-{index + 1:03d}"
            writer.writerow([slide.path.name, digest, case, f"{case}-A1", *COHORT.values()])
    return target


def _search_cli(env: dict[str, str], token: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "slidestream"), "search", *args],
        capture_output=True,
        text=True,
        check=False,
        # The token travels in the environment: arguments are visible to ps.
        env=child_env({"SLIDESTREAM_TOKEN": token, "SEARCH_API": env["SEARCH_API"]}),
    )


def wait_indexed(env: dict[str, str], token: str, slide_ids: Sequence[str]) -> bool:
    """True once every slide in ``slide_ids`` is catalogued with the embedding model's run."""
    deadline = time.monotonic() + INDEX_TIMEOUT_S
    wanted = set(slide_ids)
    while time.monotonic() < deadline:
        found = _search_cli(
            env, token, "--filter", f"model={EMBEDDING_MODEL}", "--all", "--json", "--limit", "500"
        )
        if found.returncode == 0:
            seen = {str(hit["slide_id"]) for hit in _hits(found.stdout)}
            if wanted <= seen:
                return True
        time.sleep(INDEX_POLL_S)
    return False


def _hits(stdout: str) -> list[dict[str, object]]:
    hits: list[dict[str, object]] = []
    for line in stdout.splitlines():
        if line.strip().startswith("{"):
            hits.extend(json.loads(line).get("items", []))
    return hits


def query_square(truth: npt.NDArray[np.uint8], label_index: int) -> tuple[int, int] | None:
    """Top-left of the first level-0 square of :data:`QUERY_SIDE_PX` wholly of one class."""
    side, step = QUERY_SIDE_PX, QUERY_SIDE_PX // 8
    for y in range(0, truth.shape[0] - side, step):
        for x in range(0, truth.shape[1] - side, step):
            if (truth[y : y + side, x : x + side] == label_index).all():
                return x, y
    return None


def query_region(
    planted: dict[str, PlantedSlide], label_index: int
) -> tuple[str, PlantedSlide, tuple[int, int]] | None:
    """The first planted slide (by file name) with a square wholly of the class, and its corner."""
    for slide_id, slide in sorted(planted.items(), key=lambda item: item[1].path.name):
        corner = query_square(np.load(slide.truth), label_index)
        if corner is not None:
            return slide_id, slide, corner
    return None


def planted_type(truth: npt.NDArray[np.uint8], x: int, y: int, size: int) -> str:
    """The planted class under most of the tile at (x, y) (``glass`` off the section)."""
    from slidestream_samples.tissue_types import GLASS, TISSUE_TYPES

    patch = truth[y : y + size, x : x + size]
    if patch.size == 0:
        return "?"
    values, counts = np.unique(patch, return_counts=True)
    winner = int(values[np.argmax(counts)])
    return "glass" if winner == GLASS else TISSUE_TYPES[winner]


def show_search(
    env: dict[str, str],
    token: str,
    planted: dict[str, PlantedSlide],
    names: dict[str, str],
    console: Console,
) -> int:
    """The facet table and the similar-region query over the ``planted`` slides the models
    analysed (QC may stop one: a planted fold); returns 1 when the catalogue's answer is not the
    planted truth (fewer than half of the planted hits on the query's tissue type), else 0."""
    from slidestream_samples.tissue_types import TISSUE_TYPES

    if planted and not wait_indexed(env, token, list(planted)):
        console.print("[red]✗[/] the analysed slides did not reach the search catalogue")
        return 1
    facets = _search_cli(env, token, "--facets", "--limit", "10")
    console.print(facets.stdout or facets.stderr)
    if len(planted) < 2:
        console.print("[yellow]fewer than two planted slides were analysed: no similarity query[/]")
        return 0
    found = query_region(planted, TISSUE_TYPES.index(QUERY_TYPE))
    if found is None:
        console.print(f"[red]✗[/] no {QUERY_TYPE} square on any planted slide")
        return 1
    query_id, query_slide, corner = found
    region = f"{corner[0]},{corner[1]},{QUERY_SIDE_PX},{QUERY_SIDE_PX}"
    similar = _search_cli(env, token, "similar", "--slide", query_id, "--region", region, "--json")
    if similar.returncode != 0:
        console.print(f"[red]✗[/] similar search failed: {similar.stderr.strip()}")
        return 1
    page = json.loads(similar.stdout)
    table = Table(
        title=f"slides similar to {QUERY_TYPE} at {region} of {query_slide.path.name}",
        title_justify="left",
    )
    for column in ("slide", "best tile (level 0)", "distance", "planted type there"):
        table.add_column(column)
    on_type = 0
    for hit in page["items"]:
        hit_id = str(hit["slide_id"])
        kind = "—"
        if hit_id in planted:
            kind = planted_type(np.load(planted[hit_id].truth), hit["x"], hit["y"], hit["size_px"])
            on_type += kind == QUERY_TYPE
        table.add_row(
            names.get(hit_id, hit_id),
            f"{hit['x']},{hit['y']} ({hit['size_px']} px)",
            f"{hit['distance']:.3f}",
            f"[green]{kind}[/]" if kind == QUERY_TYPE else kind,
        )
    console.print(table)
    others = sum(1 for hit in page["items"] if str(hit["slide_id"]) in planted)
    console.print(f"{on_type} of {others} planted slides found on {QUERY_TYPE}")
    return 0 if others and on_type * 2 >= others else 1
