"""``make models``: tiles from generated slides, then training in torch's environment, then cards.

Two steps, each skipped when its inputs are unchanged (a SHA-256 over the sources that make
them, recorded in ``<out>/build.json``):

1. data (this environment): :func:`~slidestream_samples.reference_models.dataset.build_dataset`
   into ``<out>/data``;
2. models (the Python given, one with torch: Triton's environment): ``train.py train`` exports
   the TorchScript files and measures them on the held-out slides; this step then places each
   model as ``<out>/<name>/model.pt`` beside its ``card.json`` (a validated
   :class:`~slidestream_contracts.model_card.ModelCardV1`, the measured accuracy in
   ``metrics``).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from slidestream_contracts.model_card import (
    ModelCardV1,
    ModelInputV1,
    ModelOutputV1,
    OutputKind,
)
from slidestream_samples import painting, tissue_types
from slidestream_samples.reference_models import dataset
from slidestream_wsi.pyramid import tiles

TISSUE_TYPE_MODEL = "tissue-type"
TILE_EMBEDDING_MODEL = "tile-embedding"
MODEL_VERSION = "1"
MAX_BATCH_SIZE = 32
PREFERRED_BATCH_SIZES = (8, 16, 32)
"""The batches the model runs fastest per tile where it is served here (CPU Triton): torch alone
runs it at 1396 tiles/s in batches of 32 and 899 in batches of 64 (docs/benchmarks.md,
inference), so Triton's dynamic batcher should not form larger ones."""
TRAIN_SCRIPT = Path(__file__).with_name("train.py")
TRAIN_TIMEOUT_S = 1800.0
DATA_SOURCES = (Path(tissue_types.__file__), Path(painting.__file__), Path(dataset.__file__))
"""What the tiles follow from: the painting, the seeds and spacing, and the reader's tiling."""
READER_SOURCES = (Path(tiles.__file__),)


@dataclass(frozen=True, slots=True)
class BuildResult:
    out: Path
    data_built: bool
    models_built: bool
    record: dict[str, object]
    """What ``build.json`` holds: the keys, tile counts, accuracies and timings."""

    def model_dir(self, name: str) -> Path:
        return self.out / name


def _digest(paths: tuple[Path, ...], *extra: str) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    for value in extra:
        digest.update(value.encode())
    return digest.hexdigest()


def data_key() -> str:
    return _digest(DATA_SOURCES + READER_SOURCES)


def models_key() -> str:
    return _digest((TRAIN_SCRIPT, Path(__file__)), data_key())


COMMON_DESCRIPTION = (
    "Reference model shipped with slidestream, trained by `make models` on slides of "
    "slidestream_samples.tissue_types (planted tumour, stroma, fat, necrosis and mucus regions; "
    "synthetic H&E, not for diagnosis)."
)


def _card(
    name: str, description: str, model_input: ModelInputV1, output: ModelOutputV1, accuracy: object
) -> ModelCardV1:
    return ModelCardV1(
        name=name,
        version=MODEL_VERSION,
        description=f"{COMMON_DESCRIPTION} {description}",
        intended_stain="H&E",
        input=model_input,
        outputs=(output,),
        max_batch_size=MAX_BATCH_SIZE,
        preferred_batch_sizes=PREFERRED_BATCH_SIZES,
        metrics={"held_out_accuracy": float(str(accuracy))},
    )


def model_cards(metrics: dict[str, object]) -> dict[str, ModelCardV1]:
    """Both models' cards from what training measured (``metrics.json``)."""
    mean, std, labels = metrics["mean"], metrics["std"], metrics["labels"]
    tissue_metrics, embedding_metrics = metrics["tissue_type"], metrics["tile_embedding"]
    assert isinstance(mean, list) and isinstance(std, list) and isinstance(labels, list)
    assert isinstance(tissue_metrics, dict) and isinstance(embedding_metrics, dict)
    model_input = ModelInputV1(
        tile_size_px=dataset.TILE_SIZE_PX,
        mpp_um=dataset.TILE_MPP_UM,
        mean=(mean[0], mean[1], mean[2]),
        std=(std[0], std[1], std[2]),
    )
    held_out = f"{metrics['held_out_tiles']} tiles of {len(dataset.HELD_OUT_SEEDS)} held-out slides"
    probabilities = ModelOutputV1(
        name="PROBABILITIES",
        kind=OutputKind.CLASS_PROBABILITIES,
        width=len(labels),
        labels=tuple(labels),
    )
    embedding = ModelOutputV1(
        name="EMBEDDING", kind=OutputKind.EMBEDDING, width=int(str(metrics["embedding_width"]))
    )
    return {
        TISSUE_TYPE_MODEL: _card(
            TISSUE_TYPE_MODEL,
            f"Tissue type per tile. held_out_accuracy: share of {held_out} whose most probable "
            "class is the planted one.",
            model_input,
            probabilities,
            tissue_metrics["held_out_accuracy"],
        ),
        TILE_EMBEDDING_MODEL: _card(
            TILE_EMBEDDING_MODEL,
            "Unit-length tile embedding (the classifier's trunk). held_out_accuracy: nearest "
            f"class centroid (cosine, centroids of the training tiles) on {held_out}.",
            model_input,
            embedding,
            embedding_metrics["held_out_accuracy"],
        ),
    }


def _train(torch_python: Path, out: Path) -> dict[str, object]:
    training = out / "training"
    subprocess.run(
        [
            str(torch_python),
            str(TRAIN_SCRIPT),
            "train",
            "--data",
            str(out / "data"),
            "--out",
            str(training),
        ],
        check=True,
        timeout=TRAIN_TIMEOUT_S,
    )
    metrics: dict[str, object] = json.loads((training / "metrics.json").read_text("utf-8"))
    for name, card in model_cards(metrics).items():
        directory = out / name
        directory.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(training / f"{name}.pt", directory / "model.pt")
        (directory / "card.json").write_text(card.model_dump_json(indent=2) + "\n", "utf-8")
    return metrics


def build(out: Path, torch_python: Path, *, force: bool = False) -> BuildResult:
    """The data and the models under ``out``, each rebuilt only when its key changed."""
    out.mkdir(parents=True, exist_ok=True)
    record_path = out / "build.json"
    record: dict[str, object] = (
        json.loads(record_path.read_text("utf-8")) if record_path.exists() else {}
    )
    keys = {"data_key": data_key(), "models_key": models_key()}
    data_built = force or record.get("data_key") != keys["data_key"]
    if data_built:
        started = time.monotonic()
        shutil.rmtree(out / "data", ignore_errors=True)
        record = {"tiles": dataset.build_dataset(out / "data")}
        record["data_seconds"] = round(time.monotonic() - started, 1)
        record["data_key"] = keys["data_key"]
        record_path.write_text(json.dumps(record, indent=2) + "\n", "utf-8")
    models_built = data_built or record.get("models_key") != keys["models_key"]
    if models_built:
        started = time.monotonic()
        metrics = _train(torch_python, out)
        record["models_seconds"] = round(time.monotonic() - started, 1)
        record["train_seconds"] = metrics["train_seconds"]
        record["held_out_accuracy"] = {
            TISSUE_TYPE_MODEL: metrics["tissue_type"],
            TILE_EMBEDDING_MODEL: metrics["tile_embedding"],
        }
        record["models_key"] = keys["models_key"]
    record_path.write_text(json.dumps(record, indent=2) + "\n", "utf-8")
    return BuildResult(out, data_built, models_built, record)
