"""Embedding an uploaded patch: the version chosen, the tile prepared as slide tiles are, the one
output checked, and every refusal with its kind."""

from __future__ import annotations

import io

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from slidestream_inference.adapters.model_bucket import ModelBucket
from slidestream_inference.adapters.triton import (
    ModelInputRejectedError,
    ModelNotReadyError,
    TritonUnavailableError,
)
from slidestream_inference.domain.tensors import normalise
from slidestream_inference.model_embedding import (
    ModelFaultError,
    NoEmbeddingOutputError,
    NotLoadedError,
    PatchEmbedder,
    PatchTooLargeRequestError,
)
from slidestream_inference.models_admin import (
    InvalidRequestError,
    NotFoundError,
    UnavailableError,
)
from tests.support.fakes import MemoryStore
from tests.support.inference import FakeTriton, mean_intensity_model, model_card, store_card

TILE_PX = 128
"""The tile of :func:`tests.support.inference.model_card`."""


def png(rgb: npt.NDArray[np.uint8]) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def tissue(size_px: int = TILE_PX, seed: int = 3) -> npt.NDArray[np.uint8]:
    return np.random.default_rng(seed).integers(0, 256, (size_px, size_px, 3), dtype=np.uint8)


@pytest.fixture
def store() -> MemoryStore:
    store = MemoryStore()
    for version in ("1", "2", "3"):
        store_card(store, model_card(version=version))
    return store


@pytest.fixture
def triton() -> FakeTriton:
    return FakeTriton(ready={"grey": ("1", "2")})


@pytest.fixture
def embedder(store: MemoryStore, triton: FakeTriton) -> PatchEmbedder:
    return PatchEmbedder(bucket=ModelBucket(store, "models"), triton=triton)


async def test_a_tile_embeds_as_the_model_answers_for_it_normalised_as_slide_tiles_are(
    store: MemoryStore, embedder: PatchEmbedder, triton: FakeTriton
) -> None:
    standardised = {"tile_size_px": TILE_PX, "mpp_um": 1.0, "mean": [0.5, 0.4, 0.3]}
    card = model_card(version="2", input=standardised)
    store_card(store, card)
    pixels = tissue()

    view = await embedder.embed("grey", png(pixels))

    expected = mean_intensity_model(normalise(pixels[None], card.input))["EMBED"][0]
    assert (view.model, view.version, view.dimension) == ("grey", "2", 3)
    np.testing.assert_array_equal(np.asarray(view.embedding, np.float32), expected)
    assert triton.versions_asked == [("grey", "2")]  # the newest ready, not the newest pushed


async def test_a_larger_patch_is_centre_cropped_and_resampled_to_the_tile(
    embedder: PatchEmbedder,
) -> None:
    centre = tissue(TILE_PX * 2)
    framed = np.zeros((TILE_PX * 2, TILE_PX * 4, 3), np.uint8)
    framed[:, TILE_PX : TILE_PX * 3] = centre

    whole = await embedder.embed("grey", png(framed))
    cropped = await embedder.embed("grey", png(centre))

    assert whole.embedding == cropped.embedding


async def test_the_version_asked_for_is_used_when_loaded(
    embedder: PatchEmbedder, triton: FakeTriton
) -> None:
    view = await embedder.embed("grey", png(tissue()), "1")
    assert view.version == "1"
    assert triton.versions_asked == [("grey", "1")]


async def test_unknown_models_and_versions_are_not_found(embedder: PatchEmbedder) -> None:
    with pytest.raises(NotFoundError, match="no model 'other'"):
        await embedder.embed("other", png(tissue()))
    with pytest.raises(NotFoundError, match="no version 7") as raised:
        await embedder.embed("grey", png(tissue()), "7")
    assert [p.field for p in raised.value.problems] == ["version"]


async def test_a_version_triton_does_not_serve_is_not_loaded(
    embedder: PatchEmbedder, triton: FakeTriton
) -> None:
    with pytest.raises(NotLoadedError, match="version 3 is not loaded"):
        await embedder.embed("grey", png(tissue()), "3")
    triton.ready = {}
    with pytest.raises(NotLoadedError, match="grey is not loaded"):
        await embedder.embed("grey", png(tissue()))
    assert triton.requests == 0


async def test_a_model_without_an_embedding_output_is_refused_with_its_outputs_named(
    store: MemoryStore, triton: FakeTriton, embedder: PatchEmbedder
) -> None:
    probabilities_only = model_card(
        name="probs",
        outputs=[
            {"name": "PROBS", "kind": "class_probabilities", "width": 2, "labels": ["a", "b"]}
        ],
    )
    store_card(store, probabilities_only)
    triton.ready["probs"] = ("1",)
    with pytest.raises(NoEmbeddingOutputError, match=r"PROBS \(class_probabilities\)"):
        await embedder.embed("probs", png(tissue()))


async def test_patches_out_of_bounds_or_not_images_are_refused_before_triton(
    embedder: PatchEmbedder, triton: FakeTriton
) -> None:
    with pytest.raises(PatchTooLargeRequestError):
        await embedder.embed("grey", png(np.zeros((1, 4097, 3), np.uint8)))
    with pytest.raises(InvalidRequestError) as raised:
        await embedder.embed("grey", b"GIF89a not really")
    assert [p.field for p in raised.value.problems] == ["image"]
    assert triton.requests == 0


@pytest.mark.parametrize(
    ("failure", "kind"),
    [
        (TritonUnavailableError("connection refused"), UnavailableError),
        (ModelNotReadyError("unloaded"), NotLoadedError),
        (ModelInputRejectedError("wrong dims"), ModelFaultError),
    ],
)
async def test_triton_faults_become_the_api_s_kinds(
    embedder: PatchEmbedder, triton: FakeTriton, failure: Exception, kind: type[Exception]
) -> None:
    triton.failure = failure
    with pytest.raises(kind):
        await embedder.embed("grey", png(tissue()))


async def test_an_embedding_that_contradicts_the_card_is_a_model_fault(
    embedder: PatchEmbedder, triton: FakeTriton
) -> None:
    def wrong_width(batch: npt.NDArray[np.float32]) -> dict[str, np.ndarray]:
        return {"EMBED": np.zeros((len(batch), 5), np.float32)}

    triton.model = wrong_width
    with pytest.raises(ModelFaultError, match=r"EMBED: shape \[1, 5\]"):
        await embedder.embed("grey", png(tissue()))
