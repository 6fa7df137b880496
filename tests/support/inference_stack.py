"""Support for the inference integration tests on the running stack: tiny real models (a
TorchScript file made with the Triton environment's torch, a slow Python-backend directory),
the partner and models CLIs, tenants, the inference consumer group's progress, and the model
run directly in torch for comparison."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import subprocess
import sys
import textwrap
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from slidestream_client.errors import SlidestreamError
from slidestream_client.model_client import ModelsClient
from slidestream_contracts.events import ObjectRef, SlideQcV1
from slidestream_contracts.model_card import ModelCardV1
from slidestream_platform.objectstore.minio_store import MinioObjectStore
from slidestream_samples import painting
from slidestream_wsi.pyramid import TilePlan, iter_tile_batches, open_source

SLIDESTREAM = Path(sys.executable).with_name("slidestream")
"""The CLI of this environment (partner upload and status, models, admin)."""
REPO_ROOT = Path(__file__).resolve().parents[2]
TRITON_PYTHON = REPO_ROOT / ".local" / "triton-venv" / "bin" / "python"
"""The Triton environment's interpreter: the only one here with torch."""
CLI_TIMEOUT_S = 300
INFERENCE_GROUP = "inference"
"""The stack's inference service consumes as this group (its service name)."""

TILE_NET_SOURCE = textwrap.dedent(
    """
    import sys

    import torch


    class TileNet(torch.nn.Module):
        \"\"\"Class probabilities and an embedding from 8 px patches of a tile.\"\"\"

        def __init__(self, classes: int, width: int) -> None:
            super().__init__()
            self.patches = torch.nn.Conv2d(3, width, kernel_size=8, stride=8)
            self.head = torch.nn.Linear(width, classes)

        def forward(self, x: torch.Tensor):
            features = torch.tanh(self.patches(x)).mean(dim=(2, 3))
            return torch.softmax(4.0 * self.head(features), dim=1), features


    torch.manual_seed(int(sys.argv[2]))
    module = torch.jit.script(TileNet(int(sys.argv[3]), int(sys.argv[4])).eval())
    module.save(sys.argv[1])
    """
)
"""torch.jit.script reads the module's source: it must live in a file."""

RUN_TORCHSCRIPT_SOURCE = textwrap.dedent(
    """
    import sys

    import numpy as np
    import torch

    module = torch.jit.load(sys.argv[1], map_location="cpu").eval()
    with torch.inference_mode():
        result = module(torch.from_numpy(np.load(sys.argv[2])))
    tensors = result if isinstance(result, (tuple, list)) else (result,)
    np.savez(sys.argv[3], *[t.to(torch.float32).numpy() for t in tensors])
    """
)

SLOW_MODEL_PY = textwrap.dedent(
    """
    import time

    import numpy as np
    import triton_python_backend_utils as pb_utils

    SECONDS_PER_BATCH = {seconds}


    class TritonPythonModel:
        def execute(self, requests):
            # Slow on purpose (sleeping, not computing: the stack shares two cores).
            time.sleep(SECONDS_PER_BATCH)
            responses = []
            for request in requests:
                x = pb_utils.get_input_tensor_by_name(request, "INPUT").as_numpy()
                light = x.mean(axis=(1, 2, 3)).clip(0.0, 1.0).astype(np.float32)
                probs = np.stack([1.0 - light, light], axis=1).astype(np.float32)
                responses.append(
                    pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("PROBS", probs)])
                )
            return responses
    """
)


def tile_net_card(name: str, version: str = "1", **changes: object) -> dict[str, Any]:
    """The card of :data:`TILE_NET_SOURCE` with 3 classes and an 8-wide FP16 embedding: 64 px
    tiles at 2 µm/px, BGR with per-channel mean and std (the normalisation is exercised)."""
    card: dict[str, Any] = {
        "name": name,
        "version": version,
        "intended_stain": "H&E",
        "input": {
            "name": "INPUT",
            "tile_size_px": 64,
            "mpp_um": 2.0,
            "channel_order": "BGR",
            "mean": [0.6, 0.5, 0.4],
            "std": [0.2, 0.25, 0.3],
        },
        "outputs": [
            {
                "name": "PROBS",
                "kind": "class_probabilities",
                "width": 3,
                "labels": ["tumour", "stroma", "background"],
            },
            {"name": "EMBED", "kind": "embedding", "width": 8, "dtype": "FP16"},
        ],
        "max_batch_size": 16,
        "preferred_batch_sizes": [8, 16],
        "min_tissue_fraction": 0.5,
    }
    card.update(changes)
    return card


def slow_model_card(name: str, version: str = "1") -> dict[str, Any]:
    return {
        "name": name,
        "version": version,
        "input": {"name": "INPUT", "tile_size_px": 32, "mpp_um": 2.0},
        "outputs": [
            {
                "name": "PROBS",
                "kind": "class_probabilities",
                "width": 2,
                "labels": ["dark", "light"],
            }
        ],
        "max_batch_size": 8,
        "preferred_batch_sizes": [8],
        "min_tissue_fraction": 0.5,
    }


SLOW_CONFIG_PBTXT = textwrap.dedent(
    """
    backend: "python"
    max_batch_size: 8
    input [{ name: "INPUT", data_type: TYPE_FP32, dims: [ 3, 32, 32 ] }]
    output [{ name: "PROBS", data_type: TYPE_FP32, dims: [ 2 ] }]
    instance_group [{ kind: KIND_CPU, count: 1 }]
    version_policy: { all { } }
    """
)


def write_json(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def make_tile_net(directory: Path, card: dict[str, Any], *, seed: int) -> Path:
    """``model.pt`` (TorchScript of the tile net, weights from ``seed``) with ``card.json``
    beside it, in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "make_tile_net.py"
    script.write_text(TILE_NET_SOURCE, encoding="utf-8")
    model = directory / "model.pt"
    classes = str(card["outputs"][0]["width"])
    width = str(card["outputs"][1]["width"])
    completed = subprocess.run(
        [str(TRITON_PYTHON), str(script), str(model), str(seed), classes, width],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    write_json(directory / "card.json", card)
    return model


def make_slow_directory(directory: Path, card: dict[str, Any], *, seconds: float) -> Path:
    """A Triton model directory (``config.pbtxt``, ``1/model.py``) whose every batch takes
    ``seconds``, with ``card.json`` inside."""
    (directory / "1").mkdir(parents=True, exist_ok=True)
    (directory / "config.pbtxt").write_text(SLOW_CONFIG_PBTXT, encoding="utf-8")
    (directory / "1" / "model.py").write_text(
        SLOW_MODEL_PY.format(seconds=seconds), encoding="utf-8"
    )
    write_json(directory / "card.json", card)
    return directory


def run_reference(model_pt: Path, tensor: npt.NDArray[np.float32], work: Path) -> list[np.ndarray]:
    """The TorchScript module run directly in torch (the Triton environment) on ``tensor``:
    its outputs in order, as float32."""
    script = work / "run_torchscript.py"
    script.write_text(RUN_TORCHSCRIPT_SOURCE, encoding="utf-8")
    np.save(work / "reference-input.npy", tensor)
    out = work / "reference-output.npz"
    completed = subprocess.run(
        [str(TRITON_PYTHON), str(script), str(model_pt), str(work / "reference-input.npy"), out],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    with np.load(out) as arrays:
        return [arrays[f"arr_{index}"] for index in range(len(arrays.files))]


# -- what a run stored -----------------------------------------------------------------------


def read_verified(store: MinioObjectStore, ref: ObjectRef) -> bytes:
    with store.open_stream(ref.bucket, ref.key) as stream:
        data = stream.read()
    assert hashlib.sha256(data).hexdigest() == ref.sha256, ref.key
    return data


def read_npz(data: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(data)) as arrays:
        return {name: arrays[name] for name in arrays.files}


def tiles_the_service_read(
    store: MinioObjectStore, qc: SlideQcV1, arrays: dict[str, np.ndarray], level_index: int,
    card: ModelCardV1, work: Path,
) -> npt.NDArray[np.uint8]:  # fmt: skip
    """The tiles at ``arrays``' level-0 origins (``scores.npz``'s or ``embeddings.npz``'s),
    read from the converted level the run used with the one slide reader (tile size and
    spacing from the card)."""
    [level] = [level for level in qc.levels if level.index == level_index]
    assert level.mpp_x is not None, "converted levels state their spacing"
    [ref] = [ref for ref in qc.dicom if ref.key.endswith(f"/level-{level_index}.dcm")]
    path = work / f"level-{level_index}.dcm"
    path.write_bytes(read_verified(store, ref))
    downsample = max(lv.width_px for lv in qc.levels) / level.width_px
    span_px = round(card.input.tile_size_px * card.input.mpp_um / level.mpp_x)
    assert int(arrays["tile_size_l0_px"]) == round(span_px * downsample)
    origins_level = np.rint(arrays["origins_px"] / downsample).astype(np.int64)
    assert np.array_equal(np.rint(origins_level * downsample), arrays["origins_px"])
    assert not (origins_level % span_px).any(), "tiles off the level's tile grid"
    with open_source([path]) as slide:
        plan = TilePlan(
            level=slide.geometry[0],
            span_px=span_px,
            tile_size_px=card.input.tile_size_px,
            mpp_um=span_px * level.mpp_x / card.input.tile_size_px,
            origins_px=origins_level,
        )
        return np.concatenate([b.pixels for b in iter_tile_batches(slide, plan, 64)])


# -- the CLIs --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CliResult:
    code: int
    lines: list[dict[str, Any]]
    stderr: str

    @property
    def last(self) -> dict[str, Any]:
        assert self.lines, f"no JSON line (exit {self.code}): {self.stderr[-2000:]}"
        return self.lines[-1]


def cli(*args: str, timeout_s: float = CLI_TIMEOUT_S) -> CliResult:
    """``slidestream ARGS --json``: exit code and the JSON lines it printed."""
    completed = subprocess.run(
        [str(SLIDESTREAM), *args, "--json"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    lines = [json.loads(line) for line in completed.stdout.splitlines() if line.startswith("{")]
    return CliResult(completed.returncode, lines, completed.stderr)


def create_tenant(prefix: str) -> tuple[str, str]:
    """A fresh tenant made as an operator makes one; (name, token)."""
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    created = cli("admin", "tenant", "create", name, timeout_s=120)
    assert created.code == 0, created.stderr[-2000:]
    return name, str(created.last["token"])


def upload(folder: Path, *, api: str, token: str) -> dict[str, str]:
    """Upload a folder's slides with the partner CLI; slide id by file name."""
    result = cli("upload", str(folder), "--api", api, "--token", token)
    assert result.code == 0, result.stderr[-2000:]
    uploaded = {Path(line["path"]).name: str(line["slide_id"]) for line in result.lines}
    assert len(uploaded) == len(list(folder.iterdir())), result.lines
    return uploaded


def paint_slide(path: Path, *, seed: int) -> Path:
    """A generated H&E-like slide (4096 x 3072 px at 1 µm/px, a third of it tissue) as a
    pyramidal TIFF: it passes QC."""
    painted = painting.paint_tissue(seed=seed)
    painting.write_tiff_pyramid(path, painted.rgb, painted.mpp_um)
    return path


def models_cli(token: str, api: str, *args: str, timeout_s: float = CLI_TIMEOUT_S) -> CliResult:
    return cli("models", *args, "--api", api, "--token", token, timeout_s=timeout_s)


def delete_model_objects(store: MinioObjectStore, bucket: str, name: str) -> None:
    """Every object of model ``name`` in the models bucket (there is no API to delete one)."""
    for summary in list(store.list(bucket, f"{name}/")):
        store.delete(bucket, summary.key)


# -- the inference consumer group ------------------------------------------------------------


async def committed_offset(bootstrap: str, group: str, topic: str, partition: int) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    found = offsets.get(TopicPartition(topic, partition))
    return -1 if found is None else int(found.offset)


async def wait_consumed(
    bootstrap: str, topic: str, partition: int, offset: int, *, timeout_s: float = 120.0
) -> None:
    """Until the inference service has acknowledged the record at ``offset`` (its group's
    committed offset is past it): whatever it was going to do with it is done."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        if await committed_offset(bootstrap, INFERENCE_GROUP, topic, partition) > offset:
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"inference did not acknowledge {topic}[{partition}]@{offset}")


# -- the models API ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ModelsApi:
    url: str
    token: str
    """The stack's models token (``models:read`` and ``models:write``)."""
    bucket: str


@dataclass
class Janitor:
    """Names a module's models (``it-<random>``) and takes them away at its end: routes
    deleted, models unloaded from Triton and their objects deleted from the bucket."""

    client: ModelsClient
    store: MinioObjectStore
    bucket: str
    models: list[str] = field(default_factory=list)
    routes: list[tuple[str, str]] = field(default_factory=list)

    def model_name(self) -> str:
        name = f"it-{uuid.uuid4().hex[:10]}"
        self.models.append(name)
        return name

    def route(self, name: str, tenant: str) -> None:
        self.client.set_route(name, tenant=tenant, min_qc="warn")
        self.routes.append((name, tenant))

    def clean(self) -> None:
        for name, tenant in self.routes:
            with contextlib.suppress(SlidestreamError):
                self.client.delete_route(name, tenant=tenant)
        for name in self.models:
            with contextlib.suppress(SlidestreamError):
                self.client.unload(name)
            delete_model_objects(self.store, self.bucket, name)
