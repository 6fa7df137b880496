"""The inference benchmark's slide, model and stack objects (``tests/bench/bench_inference``).

The slide is painted, converted and judged once per size and cached under ``.local/bench/``;
the model is pushed through the models API under the benchmark's own name and removed again.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from uuid import UUID

from slidestream_contracts.events import SlideQcV1
from slidestream_contracts.model_card import ModelCardV1
from slidestream_devstack.envfile import read_env_file
from slidestream_devstack.paths import StackPaths, find_repo_root
from slidestream_inference.adapters.tiles import LevelTiles
from slidestream_modelrepo import read_card
from slidestream_platform.objectstore.port import ObjectStore

SIZES = {"full": (40_960, 30_720), "small": (16_384, 12_288)}
"""Level-0 pixels at 0.25 µm/px: full has over 1 GPx of tissue."""
TISSUE_SHARE = 0.9
SLIDE_VERSION = 1
"""Part of the cached slide's name: bump it when the painting or its conversion changes."""
TENANT = "bench"
BENCH_MODEL = "bench-inference"
BENCH_VERSION = "1"
TRITON_READY_WAIT_S = 180.0
ROOT = find_repo_root(None)
LOCAL = StackPaths(ROOT).local
CACHE = LOCAL / "bench"
STAND_IN_SCRIPT = ROOT / "tests" / "bench" / "inference_cnn.py"


# -- the slide, converted and judged (cached) ------------------------------------------------


def prepared_slide(size: str) -> Path:
    """A folder with the converted ``dicom/level-<i>.dcm``, ``levels.json``, QC's
    ``tissue-mask.png`` and ``qc.json``; made once per size."""
    width, height = SIZES[size]
    folder = CACHE / f"inference-v{SLIDE_VERSION}-{width}x{height}"
    if (folder / "qc.json").exists():
        return folder
    from slidestream_samples.qc_bench import write_slide
    from slidestream_wsi.qc import open_tiff_pyramid, run_qc
    from tests.support.inference import convert_to_levels

    folder.mkdir(parents=True, exist_ok=True)
    source = folder / "slide.tif"
    started = time.perf_counter()
    write_slide(source, width, height, tissue_share=TISSUE_SHARE, defocused_share=0.0)
    print(f"painted {source} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    started = time.perf_counter()
    converted = convert_to_levels(source, folder / "dicom", "bench-inference")
    levels = [level.model_dump(mode="json") for level in converted.levels]
    (folder / "levels.json").write_text(json.dumps(levels), encoding="utf-8")
    print(f"converted in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    started = time.perf_counter()
    with open_tiff_pyramid(source) as pyramid:
        report, pictures = run_qc(pyramid, slide_label=source.name)
    (folder / "tissue-mask.png").write_bytes(pictures.tissue_mask_png)
    measures = {measure.name: measure.value for measure in report.measures}
    qc = {"verdict": report.verdict, "tissue_fraction": measures["tissue_fraction"]}
    (folder / "qc.json").write_text(json.dumps(qc), encoding="utf-8")
    print(f"QC {report.verdict} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    source.unlink()  # the converted levels are what the benchmark reads
    return folder


# -- the model ------------------------------------------------------------------------------


def model_dir(requested: Path | None) -> tuple[Path, str]:
    """The model's folder (``model.pt`` + ``card.json``) and what it is, for the report."""
    reference = requested or LOCAL / "models" / "tissue-type"
    if (reference / "model.pt").exists() and (reference / "card.json").exists():
        if requested is not None:
            return reference, f"the model in `{reference}`"
        return reference, "the reference tissue-type model (`make models`)"
    if requested is not None:
        raise SystemExit(f"no model.pt and card.json in {requested}")
    stand_in = CACHE / "inference-cnn"
    if not (stand_in / "card.json").exists():
        torch_python = LOCAL / "triton-venv" / "bin" / "python"
        subprocess.run([str(torch_python), str(STAND_IN_SCRIPT), str(stand_in)], check=True)
    return stand_in, "stand-in CNN (`tests/bench/inference_cnn.py`: random weights)"


def wait_for_triton(env: dict[str, str]) -> None:
    import httpx

    deadline = time.monotonic() + TRITON_READY_WAIT_S
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{env['TRITON_HTTP']}/v2/health/ready", timeout=5).is_success:
                return
        except httpx.HTTPError:
            pass
        time.sleep(2)
    raise SystemExit(f"Triton not ready after {TRITON_READY_WAIT_S:.0f} s")


# -- the stack: model and slide objects ----------------------------------------------------------


def stack_env() -> dict[str, str]:
    env = read_env_file(StackPaths(ROOT).env_file)
    needed = ("S3_ENDPOINT", "TRITON_GRPC", "INFERENCE_API", "MODELS_TOKEN_FILE")
    missing = [key for key in needed if key not in env]
    if missing:
        raise SystemExit(f"the local stack is not up (no {', '.join(missing)}): run `make up`")
    return env


def delete_prefix(store: ObjectStore, bucket: str, prefix: str) -> None:
    for summary in list(store.list(bucket, prefix)):
        store.delete(bucket, summary.key)


def push_and_load(env: dict[str, str], folder: Path) -> tuple[ModelCardV1, dict[str, object]]:
    """The model pushed under the benchmark's name and loaded (the canary answered)."""
    from slidestream_client.model_client import ModelsClient

    token = Path(env["MODELS_TOKEN_FILE"]).read_text(encoding="utf-8").strip()
    with ModelsClient(env["INFERENCE_API"], token) as models:
        pushed = models.push_path(
            folder / "model.pt",
            name=BENCH_MODEL,
            version=BENCH_VERSION,
            card_path=folder / "card.json",
        )
        print(f"pushed {pushed.name} {pushed.version}", file=sys.stderr)
        loaded = models.load(BENCH_MODEL)
    card = read_card((folder / "card.json").read_bytes(), name=BENCH_MODEL, version=BENCH_VERSION)
    return card, loaded.model_dump(mode="json")


def unload(env: dict[str, str]) -> None:
    from slidestream_client.errors import SlidestreamError
    from slidestream_client.model_client import ModelsClient

    token = Path(env["MODELS_TOKEN_FILE"]).read_text(encoding="utf-8").strip()
    with ModelsClient(env["INFERENCE_API"], token) as models:
        try:
            models.unload(BENCH_MODEL)
        except SlidestreamError as error:  # not loaded (a failed push or load)
            print(f"unload: {error}", file=sys.stderr)


def upload_slide(store: ObjectStore, folder: Path, slide_ids: list[UUID]) -> list[SlideQcV1]:
    """The level files and mask stored once (under the first id), one QC event per id."""
    first = slide_ids[0]
    dicom = tuple(
        store.put_file("converted", f"{TENANT}/{first}/dicom/{path.name}", path).to_event_ref()
        for path in sorted((folder / "dicom").glob("level-*.dcm"))
    )
    mask = store.put_file(
        "derived", f"{TENANT}/{first}/qc/tissue-mask.png", folder / "tissue-mask.png"
    ).to_event_ref()
    levels = json.loads((folder / "levels.json").read_text(encoding="utf-8"))
    qc = json.loads((folder / "qc.json").read_text(encoding="utf-8"))
    return [
        SlideQcV1.model_validate(
            {
                "slide_id": slide_id,
                "tenant": TENANT,
                "verdict": qc["verdict"],
                "tissue_mask": mask.model_dump(mode="json"),
                "dicom": [ref.model_dump(mode="json") for ref in dicom],
                "levels": levels,
            }
        )
        for slide_id in slide_ids
    ]


# -- the same tiles, for the direct client and the naive path --------------------------------


def open_level(folder: Path, event: SlideQcV1, card: ModelCardV1) -> LevelTiles:
    """The level the service reads, opened and planned by the service's own reader."""
    from slidestream_inference.adapters.tiles import TileRequest, WsiTileReader
    from slidestream_wsi.convert.model import level_file_name
    from slidestream_wsi.pyramid import choose_level, described_geometry

    level = choose_level(described_geometry(event.levels), card.input.mpp_um)
    path = folder / "dicom" / level_file_name(level.index)
    request = TileRequest(card.input.mpp_um, card.input.tile_size_px, card.min_tissue_fraction)
    mask = (folder / "tissue-mask.png").read_bytes()
    return WsiTileReader().open(path, level, mask, request)
