# mypy: ignore-errors
# (Runs in Triton's environment, the one with torch; the workspace environment that mypy checks
# has no torch, so none of this file's types could be resolved there.)
"""Train the reference tile models and measure them: the torch half of ``make models``.

Run as a script by the Python of Triton's environment (torch and numpy, nothing of the
workspace), on the tiles :mod:`slidestream_samples.reference_models.dataset` read from the
generated slides:

``python train.py train --data DIR --out DIR``
    trains one small CNN on ``DIR/train.npz`` (seeded, single-threaded: the same weights on any
    machine with the same torch), exports two TorchScript files — ``tissue-type.pt`` (class
    probabilities, softmax applied) and ``tile-embedding.pt`` (the trunk's features, L2
    normalised) — and ``metrics.json`` with their accuracy on ``DIR/held_out.npz`` (tiles of
    other slides), measured with the exported files.
``python train.py evaluate --model M.pt --card card.json --data DIR``
    the same measure of one exported model, driven by its model card (normalisation, output
    kind): prints ``{"accuracy", "tiles", "width", "unit_error"}`` as JSON (``unit_error``: how
    far a probability row's sum or an embedding's length is from 1).

Inputs follow the model card contract: ``[batch, 3, S, S]`` float32 RGB, ``(pixel / 255 -
mean) / std``; the models do not normalise themselves.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 (torch's own convention)
from torch import nn

SEED = 14
EPOCHS = 4
BATCH_SIZE = 64
LEARNING_RATE = 3e-3
WEIGHT_DECAY = 1e-4
CHANNELS = (16, 32, 64, 64)
"""Convolution widths; the last is the embedding width."""
EVAL_BATCH_SIZE = 256

# TorchScript is what the platform's Triton wrapper loads (the model card contract); torch 2.x
# warns on every script/load that it prefers torch.export.
warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.jit")


class Trunk(nn.Module):
    """Four 3x3 conv-BN-ReLU blocks, each halving the tile, then global average pooling."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        previous = 3
        for width in CHANNELS:
            layers += [
                nn.Conv2d(previous, width, 3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            previous = width
        self.features = nn.Sequential(*layers)

    def forward(self, tiles: torch.Tensor) -> torch.Tensor:
        return self.features(tiles).mean(dim=(2, 3))


class Classifier(nn.Module):
    """Trunk and a linear head: logits while training."""

    def __init__(self, classes: int) -> None:
        super().__init__()
        self.trunk = Trunk()
        self.head = nn.Linear(CHANNELS[-1], classes)

    def forward(self, tiles: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(tiles))


class TissueType(nn.Module):
    """The shipped classifier: class probabilities ``[batch, classes]``."""

    def __init__(self, classifier: Classifier) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, tiles: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.classifier(tiles), dim=1)


class TileEmbedding(nn.Module):
    """The shipped embedding: the trained trunk's pooled features, unit length."""

    def __init__(self, trunk: Trunk) -> None:
        super().__init__()
        self.trunk = trunk

    def forward(self, tiles: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.trunk(tiles), dim=1)


def load_split(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path) as data:
        return data["pixels"], data["labels"].astype(np.int64)


def normalise(pixels: np.ndarray, mean: np.ndarray, std: np.ndarray) -> torch.Tensor:
    """NHWC uint8 → NCHW float32, ``(pixel / 255 - mean) / std`` (the model card's rule)."""
    scaled = (pixels.astype(np.float32) / 255.0 - mean) / std
    return torch.from_numpy(np.ascontiguousarray(scaled.transpose(0, 3, 1, 2)))


def augment(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A random flip and quarter turn per batch: tissue has no up or left."""
    turns = int(torch.randint(0, 4, (1,), generator=generator))
    if int(torch.randint(0, 2, (1,), generator=generator)):
        batch = batch.flip(3)
    return torch.rot90(batch, turns, dims=(2, 3))


def train_classifier(
    inputs: torch.Tensor, labels: torch.Tensor, classes: int
) -> tuple[Classifier, list[float]]:
    generator = torch.Generator().manual_seed(SEED)
    model = Classifier(classes)
    optimiser = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    steps = EPOCHS * ((len(inputs) + BATCH_SIZE - 1) // BATCH_SIZE)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, LEARNING_RATE, total_steps=steps)
    # Classes cover unequal areas of the slides: weight each by the inverse of its tile count.
    counts = torch.bincount(labels, minlength=classes).clamp(min=1).float()
    weights = counts.sum() / (classes * counts)
    losses = []
    model.train()
    for _ in range(EPOCHS):
        order = torch.randperm(len(inputs), generator=generator)
        total = 0.0
        for start in range(0, len(order), BATCH_SIZE):
            index = order[start : start + BATCH_SIZE]
            batch = augment(inputs[index], generator)
            loss = F.cross_entropy(model(batch), labels[index], weight=weights)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += float(loss.detach()) * len(index)
        losses.append(total / len(inputs))
    return model.eval(), losses


def run_model(model: torch.jit.ScriptModule, inputs: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return torch.cat(
            [model(inputs[s : s + EVAL_BATCH_SIZE]) for s in range(0, len(inputs), EVAL_BATCH_SIZE)]
        )


def class_accuracy(probabilities: torch.Tensor, labels: torch.Tensor) -> float:
    return float((probabilities.argmax(dim=1) == labels).float().mean())


def centroid_accuracy(
    train: torch.Tensor, train_labels: torch.Tensor, held: torch.Tensor, labels: torch.Tensor
) -> float:
    """Nearest class centroid (cosine) of the training embeddings, on the held-out ones."""
    classes = int(train_labels.max()) + 1
    centroids = torch.stack([train[train_labels == c].mean(dim=0) for c in range(classes)])
    nearest = (held @ F.normalize(centroids, dim=1).T).argmax(dim=1)
    return float((nearest == labels).float().mean())


def export(module: nn.Module, path: Path) -> torch.jit.ScriptModule:
    """Script, save and load back: the accuracy is measured on the shipped file."""
    torch.jit.script(module.eval()).save(str(path))
    return torch.jit.load(str(path))


def train(data: Path, out: Path) -> None:
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    meta = json.loads((data / "meta.json").read_text(encoding="utf-8"))
    labels_names = meta["labels"]
    train_pixels, train_labels = load_split(data / "train.npz")
    held_pixels, held_labels = load_split(data / "held_out.npz")
    mean = (train_pixels.reshape(-1, 3).astype(np.float64) / 255).mean(axis=0).astype(np.float32)
    std = (train_pixels.reshape(-1, 3).astype(np.float64) / 255).std(axis=0).astype(np.float32)
    train_inputs = normalise(train_pixels, mean, std)
    held_inputs = normalise(held_pixels, mean, std)
    train_targets = torch.from_numpy(train_labels)
    held_targets = torch.from_numpy(held_labels)

    started = time.monotonic()
    classifier, losses = train_classifier(train_inputs, train_targets, len(labels_names))
    train_s = time.monotonic() - started

    out.mkdir(parents=True, exist_ok=True)
    tissue_type = export(TissueType(classifier), out / "tissue-type.pt")
    embedding = export(TileEmbedding(classifier.trunk), out / "tile-embedding.pt")
    probabilities = run_model(tissue_type, held_inputs)
    per_class = {
        name: float((probabilities.argmax(1)[held_targets == c] == c).float().mean())
        for c, name in enumerate(labels_names)
    }
    metrics = {
        "labels": labels_names,
        "mean": [round(float(v), 6) for v in mean],
        "std": [round(float(v), 6) for v in std],
        "embedding_width": CHANNELS[-1],
        "train_tiles": len(train_labels),
        "held_out_tiles": len(held_labels),
        "epochs": EPOCHS,
        "train_seconds": round(train_s, 1),
        "final_loss": round(losses[-1], 4),
        "torch": torch.__version__,
        "tissue_type": {
            "held_out_accuracy": class_accuracy(probabilities, held_targets),
            "per_class": per_class,
        },
        "tile_embedding": {
            "held_out_accuracy": centroid_accuracy(
                run_model(embedding, train_inputs),
                train_targets,
                run_model(embedding, held_inputs),
                held_targets,
            ),
        },
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")


def evaluate(model_path: Path, card_path: Path, data: Path) -> dict[str, float | int]:
    """Accuracy of one exported model on the held-out tiles, fed as its card says."""
    torch.set_num_threads(1)
    card = json.loads(card_path.read_text(encoding="utf-8"))
    mean = np.asarray(card["input"]["mean"], np.float32)
    std = np.asarray(card["input"]["std"], np.float32)
    model = torch.jit.load(str(model_path))
    held_pixels, held_labels = load_split(data / "held_out.npz")
    held_targets = torch.from_numpy(held_labels)
    outputs = run_model(model, normalise(held_pixels, mean, std))
    if card["outputs"][0]["kind"] == "class_probabilities":
        accuracy = class_accuracy(outputs, held_targets)
        invariant = outputs.sum(dim=1)
    else:
        invariant = outputs.norm(dim=1)
        train_pixels, train_labels = load_split(data / "train.npz")
        accuracy = centroid_accuracy(
            run_model(model, normalise(train_pixels, mean, std)),
            torch.from_numpy(train_labels),
            outputs,
            held_targets,
        )
    return {
        "accuracy": accuracy,
        "tiles": len(held_labels),
        "width": outputs.shape[1],
        # Probabilities sum to 1 and embeddings have unit length: the largest miss of either.
        "unit_error": float((invariant - 1).abs().max()),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    train_parser = commands.add_parser("train")
    train_parser.add_argument("--data", type=Path, required=True)
    train_parser.add_argument("--out", type=Path, required=True)
    evaluate_parser = commands.add_parser("evaluate")
    evaluate_parser.add_argument("--model", type=Path, required=True)
    evaluate_parser.add_argument("--card", type=Path, required=True)
    evaluate_parser.add_argument("--data", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "train":
        train(args.data, args.out)
    else:
        print(json.dumps(evaluate(args.model, args.card, args.data)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
