# mypy: ignore-errors
# (Runs in Triton's environment, the one with torch; the workspace environment that mypy checks
# has no torch, so none of this file's types could be resolved there.)
"""The inference benchmark's stand-in model, when ``make models`` has not built the reference
one: a small CNN with seeded random weights, exported to TorchScript beside its model card.

``python inference_cnn.py OUT_DIR`` (the Python of Triton's environment) writes
``OUT_DIR/model.pt`` and ``OUT_DIR/card.json``. Its cost per tile is what matters to the
benchmark, not its answers: three strided convolutions on a 128-px tile at 1 µm/px, class
probabilities (softmax over 4) and a 16-wide embedding.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from torch import nn

TILE_SIZE_PX = 128
TILE_MPP_UM = 1.0
LABELS = ["a", "b", "c", "d"]
EMBEDDING_WIDTH = 16
SEED = 14


class SmallCnn(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.trunk = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.classes = nn.Linear(64, len(LABELS))
        self.embedding = nn.Linear(64, EMBEDDING_WIDTH)

    def forward(self, tiles: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.trunk(tiles)
        return torch.softmax(self.classes(features), dim=1), self.embedding(features)


def card() -> dict[str, object]:
    return {
        "name": "bench-cnn",
        "version": "1",
        "description": "The inference benchmark's stand-in: seeded random weights, no meaning.",
        "input": {
            "name": "INPUT",
            "tile_size_px": TILE_SIZE_PX,
            "mpp_um": TILE_MPP_UM,
            "channel_order": "RGB",
            "mean": [0.5, 0.5, 0.5],
            "std": [0.25, 0.25, 0.25],
        },
        "outputs": [
            {"name": "PROBABILITIES", "kind": "class_probabilities", "width": 4, "labels": LABELS},
            {"name": "EMBEDDING", "kind": "embedding", "width": EMBEDDING_WIDTH},
        ],
        "max_batch_size": 64,
        "preferred_batch_sizes": [16, 32, 64],
        "min_tissue_fraction": 0.5,
    }


def main(out_dir: Path) -> None:
    torch.manual_seed(SEED)
    model = SmallCnn().eval()
    example = torch.zeros(1, 3, TILE_SIZE_PX, TILE_SIZE_PX)
    with torch.inference_mode():
        traced = torch.jit.trace(model, example)
    out_dir.mkdir(parents=True, exist_ok=True)
    traced.save(str(out_dir / "model.pt"))
    (out_dir / "card.json").write_text(json.dumps(card(), indent=2), encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
