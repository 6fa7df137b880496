"""Triton's faults sorted for the delivery middleware: transient ones retried, a refused input
dead-lettered; the ready versions in numeric order."""

from __future__ import annotations

import pytest
from tritonclient.utils import InferenceServerException

from slidestream_inference.adapters.triton import (
    ModelInputRejectedError,
    ModelNotReadyError,
    TritonRequestError,
    TritonUnavailableError,
    sorted_versions,
    triton_error,
)
from slidestream_platform.errors import DependencyDownError, PoisonError, RetryableError


@pytest.mark.parametrize(
    ("status", "message", "kind"),
    [
        ("StatusCode.UNAVAILABLE", "failed to connect to all addresses", TritonUnavailableError),
        ("StatusCode.UNAVAILABLE", "Server not ready", TritonUnavailableError),
        ("StatusCode.DEADLINE_EXCEEDED", "Deadline Exceeded", TritonRequestError),
        ("StatusCode.NOT_FOUND", "Request for unknown model: 'm' is not found", ModelNotReadyError),
        (
            "StatusCode.UNAVAILABLE",
            "Request for unknown model: 'm' version 2 is not ready",
            ModelNotReadyError,
        ),
        (
            "StatusCode.INVALID_ARGUMENT",
            "Request for unknown model: 'm' version 9",
            ModelNotReadyError,
        ),
        ("StatusCode.INTERNAL", "stub went away", TritonRequestError),
    ],
)
def test_an_unreachable_server_or_a_missing_model_is_retried(
    status: str, message: str, kind: type[RetryableError]
) -> None:
    error = triton_error(InferenceServerException(message, status=status), "m")
    assert isinstance(error, kind) and isinstance(error, RetryableError)
    assert message in str(error)
    # Only a server that is not there makes a slide wait without end; the rest is counted.
    assert isinstance(error, DependencyDownError) is (kind is TritonUnavailableError)


def test_an_input_triton_refuses_is_poison() -> None:
    refused = InferenceServerException(
        "unexpected shape for input 'INPUT', model expects [-1,3,224,224]",
        status="StatusCode.INVALID_ARGUMENT",
    )
    error = triton_error(refused, "m")
    assert isinstance(error, ModelInputRejectedError) and isinstance(error, PoisonError)
    assert error.reason == "model-input-rejected"


def test_versions_sort_as_numbers() -> None:
    assert sorted_versions(["10", "9", "2", "9"]) == ("2", "9", "10")
