"""A finished run as files and events: what is written under the run's folder, and the
``slides.inferred.v1`` + ``inferred`` status announced once."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from slidestream_contracts.embeddings import (
    EMBEDDINGS_NAME,
    SLIDE_EMBEDDING_NAME,
    embeddings_arrays,
)
from slidestream_contracts.events import (
    ObjectRef,
    SlideEvent,
    SlideInferredV1,
    SlideQcV1,
    SlideStatusV1,
)
from slidestream_contracts.model_card import ModelCardV1
from slidestream_contracts.states import SlideState, Step
from slidestream_inference.domain.aggregate import SlideOutputs, heat_grid
from slidestream_inference.domain.artefacts import (
    SCORES_NAME,
    SUMMARY_NAME,
    content_type,
    derived_key,
    heatmap_name,
    json_bytes,
    npy_bytes,
    npz_bytes,
)
from slidestream_inference.domain.heatmaps import heatmap_png

SUMMARY_SCHEMA = "inference-summary.v1"


@dataclass(frozen=True, slots=True)
class RunFacts:
    """What a run read and how: everything its files and events state besides the outputs."""

    qc: SlideQcV1
    card: ModelCardV1
    card_sha256: str
    level_index: int
    level0_size_px: tuple[int, int]
    tile_mpp_um: float
    origins_l0_px: npt.NDArray[np.int64]
    tile_size_l0_px: float
    bytes_read: int
    seconds: float

    def key(self, name: str) -> str:
        return derived_key(
            self.qc.tenant, self.qc.slide_id, self.card.name, self.card.version, name
        )


def write_plan(
    facts: RunFacts, outputs: SlideOutputs, thumbnail: npt.NDArray[np.uint8]
) -> Iterator[tuple[str, bytes, str]]:
    """(file name, bytes, content type) of every file of the run, ``summary.json`` last."""
    origins = facts.origins_l0_px
    tile_l0 = np.asarray(round(facts.tile_size_l0_px), np.int64)
    if outputs.scores is not None:
        arrays: dict[str, np.ndarray] = {
            "origins_px": origins,
            "tile_size_l0_px": tile_l0,
            "probabilities": outputs.scores,
            "labels": np.asarray(outputs.labels, dtype=np.str_),
        }
        yield SCORES_NAME, npz_bytes(arrays), content_type(SCORES_NAME)
        width, height = facts.level0_size_px
        for index, label in enumerate(outputs.labels):
            grid = heat_grid(
                origins, outputs.scores[:, index], facts.tile_size_l0_px, (width, height)
            )
            cover = grid.shape[1] * facts.tile_size_l0_px / width
            name = heatmap_name(label)
            picture = heatmap_png(thumbnail, grid, cover, f"probability of {label}")
            yield name, picture, content_type(name)
    if outputs.embeddings is not None:
        arrays = embeddings_arrays(outputs.embeddings, origins, facts.tile_size_l0_px)
        yield EMBEDDINGS_NAME, npz_bytes(arrays), content_type(EMBEDDINGS_NAME)
        slide = outputs.slide_embedding()
        if slide is not None:
            yield SLIDE_EMBEDDING_NAME, npy_bytes(slide), content_type(SLIDE_EMBEDDING_NAME)
    yield SUMMARY_NAME, json_bytes(summary_document(facts, outputs)), content_type(SUMMARY_NAME)


def summary_document(facts: RunFacts, outputs: SlideOutputs) -> dict[str, object]:
    return {
        "schema_version": SUMMARY_SCHEMA,
        "model": facts.card.name,
        "version": facts.card.version,
        "card_sha256": facts.card_sha256,
        "level": facts.level_index,
        "tile_count": outputs.tile_count,
        "tile_size_px": facts.card.input.tile_size_px,
        "tile_mpp_um": facts.tile_mpp_um,
        "tile_size_l0_px": facts.tile_size_l0_px,
        "labels": list(outputs.labels),
        "summary": outputs.summary(),
        "bytes_read": facts.bytes_read,
        "seconds": round(facts.seconds, 3),
    }


def inferred_events(
    facts: RunFacts, outputs: SlideOutputs, refs: Mapping[str, ObjectRef]
) -> tuple[SlideEvent, ...]:
    """``slides.inferred.v1`` (every file written, by kind) and the ``inferred`` status."""
    qc, card = facts.qc, facts.card
    inferred = SlideInferredV1(
        slide_id=qc.slide_id,
        tenant=qc.tenant,
        model_name=card.name,
        model_version=card.version,
        outputs=tuple(refs.values()),
        summary=outputs.summary(),
        tile_count=outputs.tile_count,
        tile_mpp_um=facts.tile_mpp_um,
        scores=refs.get(SCORES_NAME),
        heatmaps=tuple(
            refs[heatmap_name(label)] for label in outputs.labels if heatmap_name(label) in refs
        ),
        embeddings=refs.get(EMBEDDINGS_NAME),
        slide_embedding=refs.get(SLIDE_EMBEDDING_NAME),
    )
    status = SlideStatusV1(
        slide_id=qc.slide_id,
        tenant=qc.tenant,
        state=SlideState.INFERRED,
        step=Step.INFERENCE,
        detail=f"{card.name} version {card.version}: {outputs.tile_count} tiles",
    )
    return inferred, status
