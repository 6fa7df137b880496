"""Real embeddings of real tiles: the held-out tiles of the five planted tissue types (written by
``make models``: ``.local/models/data/held_out.npz``) embedded by the reference ``tile-embedding``
model on the stack's Triton, preprocessed exactly as the inference service does.

The model is pushed under a fresh name through the stack's models API, loaded, and taken away
afterwards: nothing here depends on what an earlier run (``make demo``) left in Triton."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from slidestream_client.model_client import ModelsClient
from slidestream_contracts.model_card import ModelCardV1
from slidestream_devstack.paths import StackPaths, find_repo_root
from slidestream_inference.adapters.triton import GrpcTriton
from slidestream_inference.domain.tensors import normalise
from tests.support.inference_stack import Janitor
from tests.support.stack import object_store

EMBEDDING_MODEL: Final = "tile-embedding"
BATCH_TILES: Final = 32
TRITON_TIMEOUT_S: Final = 60.0


@dataclass(frozen=True)
class TissueTiles:
    labels: tuple[str, ...]
    """Tissue type names, indexed by ``label``."""
    label: npt.NDArray[np.int64]
    slide: npt.NDArray[np.int64]
    """Which held-out sample slide each tile came from."""
    embeddings: npt.NDArray[np.float32]
    """``(N, D)`` unit-length embeddings from Triton."""
    version: str


def models_dir() -> Path:
    return StackPaths(find_repo_root(None)).local / "models"


def embedding_card() -> ModelCardV1:
    text = (models_dir() / EMBEDDING_MODEL / "card.json").read_text(encoding="utf-8")
    return ModelCardV1.model_validate_json(text)


@contextmanager
def loaded_reference_model(stack_env: dict[str, str], card: ModelCardV1) -> Iterator[str]:
    """The reference embedding model pushed under a fresh name and loaded in the stack's Triton
    (through the models API); unloaded and deleted on leaving. Yields the name it runs under."""
    token = Path(stack_env["MODELS_TOKEN_FILE"]).read_text(encoding="utf-8").strip()
    reference = models_dir() / EMBEDDING_MODEL
    with ModelsClient(stack_env["INFERENCE_API"], token) as client:
        janitor = Janitor(client, object_store(stack_env), stack_env["MODELS_BUCKET"])
        try:
            name = janitor.model_name()
            with tempfile.TemporaryDirectory() as scratch:
                renamed = Path(scratch) / "card.json"
                renamed.write_text(card.model_copy(update={"name": name}).model_dump_json())
                client.push_path(reference / "model.pt", name=name, card_path=renamed)
            client.load(name)
            yield name
        finally:
            janitor.clean()


async def embed_held_out_tiles(stack_env: dict[str, str]) -> TissueTiles:
    """Every held-out tile through the reference ``tile-embedding`` on the stack's Triton."""
    data = models_dir() / "data"
    meta = json.loads((data / "meta.json").read_text(encoding="utf-8"))
    card = embedding_card()
    (output,) = (o.name for o in card.outputs if o.kind == "embedding")
    with np.load(data / "held_out.npz", allow_pickle=False) as held_out:
        pixels, label, slide = held_out["pixels"], held_out["labels"], held_out["slides"]
    parts = []
    with loaded_reference_model(stack_env, card) as name:
        triton = GrpcTriton(stack_env["TRITON_GRPC"], timeout_s=TRITON_TIMEOUT_S)
        try:
            for start in range(0, len(pixels), BATCH_TILES):
                batch = normalise(pixels[start : start + BATCH_TILES], card.input)
                answer = await triton.infer(name, card.version, card.input.name, batch, [output])
                parts.append(np.asarray(answer[output], np.float32))
        finally:
            await triton.close()
    embeddings = np.concatenate(parts)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    return TissueTiles(tuple(meta["labels"]), label, slide, embeddings, card.version)
