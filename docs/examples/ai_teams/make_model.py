"""Export a (tiny) tile classifier with an embedding to TorchScript: the file you push.

Run it with any Python that has torch: ``python make_model.py model.pt``. Your own model goes
where ``TinyTileModel`` is; what matters to the platform is the forward's contract, which the
model card (card.yaml) declares: one float32 input ``[batch, 3, 64, 64]`` normalised as the card
says, and the outputs in the card's order (here class probabilities, then an embedding).
"""

import sys

import torch
from torch import nn


class TinyTileModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.trunk = nn.Sequential(
            nn.Conv2d(3, 8, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(8, 16, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(16, 2)

    def forward(self, tiles: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.trunk(tiles)
        probabilities = torch.softmax(self.head(features), dim=1)
        embedding = nn.functional.normalize(features, dim=1)
        return probabilities, embedding


if __name__ == "__main__":
    torch.jit.script(TinyTileModel().eval()).save(sys.argv[1])
