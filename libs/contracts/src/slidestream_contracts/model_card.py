"""The model card: what an AI team declares about a model it pushes, and what inference obeys.

Stored beside the model as ``<name>/<version>/card.json`` in the ``models`` bucket (Triton's
repository layout). The card is the contract between the model and the platform: the tile size
and spacing the platform feeds, how it normalises pixels, and what each output means. A card
that cannot be true (labels that do not match an output's width, a preferred batch over the
maximum) is refused field by field before anything is uploaded.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import Field, StringConstraints, model_validator

from slidestream_contracts.events import Model, ModelName

TensorName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
"""A Triton tensor name (a Python identifier: the generated wrapper uses it as a key)."""
ModelVersion = Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]{0,8}$")]
"""Triton version directories are positive integers."""
Label = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
"""A class label: a file-name and metric-safe slug (``tumour``, ``stroma``)."""

MIN_TILE_SIZE_PX = 16
MAX_TILE_SIZE_PX = 2048
MAX_BATCH_SIZE = 1024
MIN_MPP_UM, MAX_MPP_UM = 0.05, 500.0
"""The spacing any microscope level can have (``slidestream_wsi.pyramid.PLAUSIBLE_MPP_UM``)."""


class OutputKind(StrEnum):
    CLASS_PROBABILITIES = "class_probabilities"
    """One probability per label per tile: shape ``[batch, width]``; heat maps per label."""
    SEGMENTATION = "segmentation"
    """A per-pixel class map per tile: shape ``[batch, width, size_px, size_px]``."""
    EMBEDDING = "embedding"
    """A feature vector per tile: shape ``[batch, width]``; indexed by search."""


class ChannelOrder(StrEnum):
    RGB = "RGB"
    BGR = "BGR"


class ModelInputV1(Model):
    """The one image input: ``[batch, 3, tile_size_px, tile_size_px]`` float32 (NCHW),
    ``(pixel / 255 - mean) / std`` per channel in ``channel_order``."""

    name: TensorName = "INPUT"
    tile_size_px: Annotated[int, Field(ge=MIN_TILE_SIZE_PX, le=MAX_TILE_SIZE_PX)]
    mpp_um: Annotated[float, Field(ge=MIN_MPP_UM, le=MAX_MPP_UM)]
    """Spacing of the tiles the model was trained on (µm/px; 0.5 ≈ 20x)."""
    channel_order: ChannelOrder = ChannelOrder.RGB
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[
        Annotated[float, Field(gt=0)], Annotated[float, Field(gt=0)], Annotated[float, Field(gt=0)]
    ] = (1.0, 1.0, 1.0)


class ModelOutputV1(Model):
    name: TensorName
    kind: OutputKind
    width: Annotated[int, Field(ge=1, le=65536)]
    """Classes (probabilities, segmentation) or dimensions (embedding)."""
    labels: tuple[Label, ...] = ()
    """One per class, in output order; none for an embedding."""
    dtype: Literal["FP32", "FP16"] = "FP32"
    size_px: Annotated[int, Field(ge=1, le=MAX_TILE_SIZE_PX)] | None = None
    """Side of a segmentation map (only for ``segmentation``)."""

    @model_validator(mode="after")
    def _labels_match_width(self) -> Self:
        if self.kind is OutputKind.EMBEDDING:
            if self.labels:
                raise ValueError(f"output {self.name}: an embedding has no labels")
        elif len(self.labels) != self.width:
            raise ValueError(
                f"output {self.name}: {len(self.labels)} labels for an output of width "
                f"{self.width}: give one label per class"
            )
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"output {self.name}: labels repeat")
        if (self.kind is OutputKind.SEGMENTATION) != (self.size_px is not None):
            raise ValueError(f"output {self.name}: size_px is for (and required by) segmentation")
        return self


class ModelCardV1(Model):
    schema_version: Literal[1] = 1
    name: ModelName
    version: ModelVersion
    description: Annotated[str, StringConstraints(max_length=2000)] = ""
    intended_stain: Annotated[str, StringConstraints(max_length=64)] | None = None
    """The stain the model was trained on (``H&E``); routes may filter on it."""
    input: ModelInputV1
    outputs: Annotated[tuple[ModelOutputV1, ...], Field(min_length=1, max_length=16)]
    max_batch_size: Annotated[int, Field(ge=1, le=MAX_BATCH_SIZE)] = 32
    preferred_batch_sizes: tuple[Annotated[int, Field(ge=1)], ...] = (8, 16, 32)
    min_tissue_fraction: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5
    """A tile is analysed when at least this share of it is usable tissue (QC's mask)."""
    metrics: dict[Annotated[str, StringConstraints(max_length=64)], float] = Field(
        default_factory=dict
    )
    """Held-out evaluation the team reports (``held_out_accuracy``: 0..1)."""

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        names = [self.input.name, *(output.name for output in self.outputs)]
        if len(set(names)) != len(names):
            raise ValueError("tensor names repeat: every input and output needs its own name")
        too_large = [size for size in self.preferred_batch_sizes if size > self.max_batch_size]
        if too_large:
            raise ValueError(
                f"preferred_batch_sizes {too_large} exceed max_batch_size {self.max_batch_size}"
            )
        return self

    def output(self, kind: OutputKind) -> ModelOutputV1 | None:
        """The first output of ``kind``, if the model has one."""
        return next((output for output in self.outputs if output.kind is kind), None)
