"""Embed an uploaded image patch with a deployed model: "find slides similar to this patch".

1. the model must have a version in the bucket (404), and its cards an ``embedding`` output
   (409 ``no-embedding-output``: every version of a model shares one signature, so the newest
   card answers for all);
2. the version is the one asked for (404 when the bucket has no such version), else the newest
   version Triton has ready; none ready, or not the one asked for → 409 ``not-loaded``;
3. the patch is decoded within its bounds (413 too large, 422 not an image), centre-cropped and
   resampled to the card's tile (:mod:`slidestream_inference.domain.patches`) and normalised by
   the function slide tiles go through (:func:`~slidestream_inference.domain.tensors.normalise`);
4. one request of one tile through the Triton adapter slide runs use; the embedding output
   checked against the card as a slide run checks it, and answered as float32 numbers.

Triton not answering is 503 ``unavailable``; a model that answers what its card does not
declare (or refuses the declared input) is 502 ``model-fault``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np

from slidestream_contracts.model_card import ModelCardV1, ModelOutputV1, OutputKind
from slidestream_inference.adapters.model_bucket import ModelBucket, Versions
from slidestream_inference.adapters.triton import (
    ModelInputRejectedError,
    ModelNotReadyError,
    TritonModels,
    TritonRequestError,
    TritonUnavailableError,
)
from slidestream_inference.domain.patches import (
    PatchTooLargeError,
    UndecodablePatchError,
    decode_patch,
    patch_tile,
)
from slidestream_inference.domain.tensors import (
    OutputContradictsCardError,
    Tensor,
    checked_outputs,
    normalise,
)
from slidestream_inference.models_admin import (
    AdminError,
    InvalidRequestError,
    NotFoundError,
    UnavailableError,
)
from slidestream_inference.models_views import EmbeddingView
from slidestream_modelrepo import FieldProblem


class NoEmbeddingOutputError(AdminError):
    code = "no-embedding-output"


class NotLoadedError(AdminError):
    code = "not-loaded"


class PatchTooLargeRequestError(AdminError):
    code = "too-large"


class ModelFaultError(AdminError):
    code = "model-fault"


@dataclass(frozen=True, slots=True)
class PatchEmbedder:
    bucket: ModelBucket
    triton: TritonModels
    """The one Triton adapter (the service's ``TRITON_GRPC``), as slide runs reach it."""

    async def embed(self, name: str, image: bytes, version: str | None = None) -> EmbeddingView:
        versions = await asyncio.to_thread(self.bucket.versions, name)
        if not versions:
            raise NotFoundError(f"no model {name!r}: push a version first")
        output = _embedding_output(name, versions)
        chosen = await self._ready_version(name, versions, version)
        card = versions[chosen]
        tensor = await asyncio.to_thread(_patch_tensor, image, card)
        vector = await self._infer(card, output, tensor)
        return EmbeddingView(
            model=name, version=chosen, dimension=len(vector), embedding=vector.tolist()
        )

    async def _ready_version(self, name: str, versions: Versions, asked: str | None) -> str:
        if asked is not None and asked not in versions:
            raise NotFoundError(
                f"{name} has no version {asked}",
                [FieldProblem("version", f"one of {', '.join(versions)}, or none for the newest")],
            )
        try:
            ready = await self.triton.ready_versions(name)
        except TritonUnavailableError as error:
            raise UnavailableError(str(error)) from error
        except (ModelNotReadyError, TritonRequestError) as error:
            raise UnavailableError(f"Triton could not list {name}'s versions: {error}") from error
        loaded = [v for v in ready if v in versions]
        if asked is not None:
            if asked not in loaded:
                raise NotLoadedError(
                    f"{name} version {asked} is not loaded in Triton (POST /v1/models/{name}/load)"
                )
            return asked
        if not loaded:
            raise NotLoadedError(f"{name} is not loaded in Triton (POST /v1/models/{name}/load)")
        return loaded[-1]  # ready_versions lists them in increasing order

    async def _infer(self, card: ModelCardV1, output: ModelOutputV1, tensor: Tensor) -> np.ndarray:
        try:
            answer = await self.triton.infer(
                card.name, card.version, card.input.name, tensor, [output.name]
            )
        except TritonUnavailableError as error:
            raise UnavailableError(str(error)) from error
        except ModelNotReadyError as error:
            raise NotLoadedError(f"{card.name} version {card.version}: {error}") from error
        except ModelInputRejectedError as error:
            raise ModelFaultError(str(error)) from error
        except TritonRequestError as error:
            raise UnavailableError(str(error)) from error
        # The slide run's check of the declared outputs, over the one output asked for.
        only_embedding = card.model_copy(update={"outputs": (output,)})
        try:
            checked = checked_outputs(only_embedding, answer, len(tensor))
        except OutputContradictsCardError as error:
            raise ModelFaultError(f"{card.name} {card.version}: {error}") from error
        return np.asarray(checked[output.name][0], np.float32)


def _embedding_output(name: str, versions: Versions) -> ModelOutputV1:
    newest = list(versions.values())[-1]
    output = newest.output(OutputKind.EMBEDDING)
    if output is None:
        kinds = ", ".join(f"{o.name} ({o.kind.value})" for o in newest.outputs)
        raise NoEmbeddingOutputError(
            f"{name} has no embedding output (its card declares {kinds})",
            [FieldProblem("outputs", "no output of kind 'embedding'")],
        )
    return output


def _patch_tensor(image: bytes, card: ModelCardV1) -> Tensor:
    """The patch as the model's one-tile input batch."""
    try:
        rgb = decode_patch(image)
    except PatchTooLargeError as error:
        raise PatchTooLargeRequestError(str(error), [FieldProblem("image", str(error))]) from None
    except UndecodablePatchError as error:
        raise InvalidRequestError(str(error), [FieldProblem("image", str(error))]) from None
    tile = patch_tile(rgb, card.input.tile_size_px)
    return normalise(tile[None], card.input)
