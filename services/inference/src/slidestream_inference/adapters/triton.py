"""Triton as a slide run uses it: which versions of a model are ready, and one inference
request at a time per call (callers keep several in flight), over the async gRPC client.

Triton's faults are sorted for the delivery middleware: the server unreachable, a model not
found, not ready or unloaded mid-slide, a deadline or an overloaded queue are transient
(:class:`~slidestream_platform.errors.RetryableError`: the message is retried, the run redone);
an input Triton refuses as malformed means the model's configuration contradicts its card, which
no retry mends (:class:`~slidestream_platform.errors.PoisonError`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from tritonclient.grpc import InferInput, InferRequestedOutput
from tritonclient.grpc.aio import InferenceServerClient
from tritonclient.utils import InferenceServerException

from slidestream_platform.errors import DependencyDownError, PoisonError, RetryableError

READY_STATE = "READY"
INPUT_DATATYPE = "FP32"
POISON_STATUSES = frozenset({"StatusCode.INVALID_ARGUMENT"})
SERVER_DOWN_STATUSES = frozenset({"StatusCode.UNAVAILABLE"})
"""gRPC codes of a server that is not there (refused connection, restarting): wait for it."""
"""gRPC codes whose request can never succeed as sent (every other code is retried)."""
MODEL_MISSING_HINTS = ("not found", "unknown model", "not ready", "unloaded")
"""Words of Triton's messages about a model that is (still or again) missing: retried whatever
the code (Triton answers an unknown version with more than one)."""


class TritonUnavailableError(DependencyDownError):
    """Triton does not answer (down, restarting, not ready): the slide waits for it."""

    reason = "triton-unavailable"
    dependency = "triton"


class TritonRequestError(RetryableError):
    """Triton answered with an error (a model that raised, a deadline): retried a few times,
    then dead-lettered with the reason, so one bad slide cannot stall its partition."""

    reason = "triton-request-failed"


class ModelNotReadyError(RetryableError):
    reason = "model-not-ready"


class ModelInputRejectedError(PoisonError):
    reason = "model-input-rejected"


class TritonModels(Protocol):
    async def ready_versions(self, name: str) -> tuple[str, ...]:
        """The versions of ``name`` Triton has loaded and ready, in increasing order."""
        ...

    async def infer(
        self,
        name: str,
        version: str,
        input_name: str,
        batch: npt.NDArray[np.float32],
        output_names: Sequence[str],
    ) -> Mapping[str, np.ndarray | None]:
        """One request: ``batch`` as ``input_name``; each output by name (``None`` if absent)."""
        ...


def sorted_versions(versions: Sequence[str]) -> tuple[str, ...]:
    return tuple(sorted(set(versions), key=int))


def triton_error(error: InferenceServerException, model: str) -> Exception:
    """The platform error for a Triton fault about ``model``."""
    status = str(error.status() or "")
    message = str(error.message() or error)
    lowered = message.lower()
    if "server not ready" in lowered:
        return TritonUnavailableError(f"{model}: {status or 'error'}: {message}")
    # Triton answers UNAVAILABLE for a model version that is not ready too: the words decide.
    if status == "StatusCode.NOT_FOUND" or any(hint in lowered for hint in MODEL_MISSING_HINTS):
        return ModelNotReadyError(f"{model}: {message}")
    if status in SERVER_DOWN_STATUSES:
        return TritonUnavailableError(f"{model}: {status}: {message}")
    if status in POISON_STATUSES:
        return ModelInputRejectedError(f"{model}: Triton refused the input: {message}")
    return TritonRequestError(f"{model}: {status or 'error'}: {message}")


class GrpcTriton:
    """:class:`TritonModels` over ``tritonclient.grpc.aio`` (one channel per service)."""

    def __init__(self, url: str, *, timeout_s: float) -> None:
        self._url = url
        self._timeout_s = timeout_s
        self._client: Any = None

    def _connected(self) -> Any:
        # Created on first use, inside the running loop the channel will belong to.
        if self._client is None:
            self._client = InferenceServerClient(self._url)
        return self._client

    async def ready_versions(self, name: str) -> tuple[str, ...]:
        try:
            index = await self._connected().get_model_repository_index(
                as_json=True, client_timeout=self._timeout_s
            )
        except InferenceServerException as error:
            raise triton_error(error, name) from error
        models = index.get("models", []) if isinstance(index, dict) else []
        return sorted_versions(
            [
                str(model.get("version", ""))
                for model in models
                if model.get("name") == name
                and model.get("state") == READY_STATE
                and str(model.get("version", "")).isdigit()
            ]
        )

    async def infer(
        self,
        name: str,
        version: str,
        input_name: str,
        batch: npt.NDArray[np.float32],
        output_names: Sequence[str],
    ) -> Mapping[str, np.ndarray | None]:
        tensor = InferInput(input_name, list(batch.shape), INPUT_DATATYPE)
        tensor.set_data_from_numpy(batch)
        try:
            result = await self._connected().infer(
                name,
                [tensor],
                model_version=version,
                outputs=[InferRequestedOutput(output) for output in output_names],
                client_timeout=self._timeout_s,
            )
        except InferenceServerException as error:
            raise triton_error(error, name) from error
        return {output: result.as_numpy(output) for output in output_names}

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
