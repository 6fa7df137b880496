"""Reading Triton's answers (statistics, instance groups) and telling "down" from "refused"."""

from __future__ import annotations

import socket

import pytest

from slidestream_inference.adapters.triton_repository import (
    GrpcTritonRepository,
    TritonUnavailableError,
    VersionStatistics,
    device_of_config,
    merge_statistics,
    statistics_from_json,
)


def test_statistics_are_means_per_request_in_milliseconds() -> None:
    # Triton's statistics extension as protobuf JSON: 64-bit numbers are strings.
    entry = {
        "name": "tissue",
        "version": "2",
        "inference_count": "40",
        "execution_count": "5",
        "inference_stats": {
            "success": {"count": "40", "ns": "400000000"},
            "queue": {"count": "40", "ns": "80000000"},
            "compute_input": {"count": "40", "ns": "4000000"},
            "compute_infer": {"count": "40", "ns": "120000000"},
            "compute_output": {"count": "40", "ns": "4000000"},
        },
    }

    assert statistics_from_json(entry) == VersionStatistics("2", 40, 5, 2.0, 3.2)


def test_a_model_without_requests_has_zero_means() -> None:
    assert statistics_from_json({"version": "1"}) == VersionStatistics("1", 0, 0, 0.0, 0.0)


def test_replicas_statistics_add_up_and_their_means_weigh_by_inferences() -> None:
    first = [VersionStatistics("1", 30, 10, 1.0, 10.0), VersionStatistics("2", 5, 5, 4.0, 2.0)]
    second = [VersionStatistics("1", 10, 4, 5.0, 2.0)]

    merged = merge_statistics([first, second])

    assert merged == [VersionStatistics("1", 40, 14, 2.0, 8.0), first[1]]
    assert merge_statistics([[], []]) == []
    idle = VersionStatistics("1", 0, 0, 0.0, 0.0)
    assert merge_statistics([[idle], [idle]]) == [idle]


@pytest.mark.parametrize(
    ("groups", "device"),
    [
        ([{"kind": "KIND_CPU", "count": 1}], "cpu"),
        ([{"kind": "KIND_GPU", "count": 1}], "gpu"),
        ([{"kind": "KIND_GPU", "count": 2, "gpus": [1, 0]}], "gpu:0,1"),
        ([{"count": 1, "gpus": [0]}], "gpu:0"),
        ([], "cpu"),
    ],
)
def test_the_device_is_read_from_the_loaded_config(groups: list[object], device: str) -> None:
    assert device_of_config({"instance_group": groups}) == device


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_an_unreachable_triton_is_unavailable() -> None:
    triton = GrpcTritonRepository(
        f"127.0.0.1:{closed_port()}", load_timeout_s=2.0, canary_timeout_s=2.0
    )

    with pytest.raises(TritonUnavailableError):
        await triton.load("tissue")
    with pytest.raises(TritonUnavailableError):
        await triton.states("tissue")
