"""Finding every Triton replica: a headless Service's addresses, resolved on each call."""

from __future__ import annotations

import socket
from collections.abc import Sequence

import pytest

from slidestream_inference.adapters.model_bucket import ModelBucket
from slidestream_inference.adapters.triton import TritonUnavailableError
from slidestream_inference.adapters.triton_replicas import (
    DnsTritonReplicas,
    FixedTritonReplicas,
    Replica,
    Resolver,
    join_endpoint,
    split_endpoint,
    system_addresses,
)
from slidestream_inference.adapters.triton_repository import TritonRepository
from tests.support.fakes import MemoryStore
from tests.support.models_api import FakeTriton

HEADLESS = "rel-slidestream-triton-replicas"


def fake_repository(endpoint: str) -> TritonRepository:
    del endpoint  # every replica serves the same (empty) bucket here
    return FakeTriton(ModelBucket(MemoryStore(), "models"))


def resolving_to(*answers: Sequence[str]) -> tuple[list[str], Resolver]:
    """A resolver answering ``answers`` in turn, and the names it was asked."""
    asked: list[str] = []
    pending = list(answers)

    async def resolve(host: str, port: int) -> Sequence[str]:
        asked.append(f"{host}:{port}")
        return pending.pop(0)

    return asked, resolve


async def test_each_address_of_the_headless_service_is_a_replica_on_the_grpc_port() -> None:
    asked, resolve = resolving_to(["10.1.0.7", "10.1.0.3", "10.1.0.7"], ["10.1.0.3"])
    made: list[str] = []

    def repository(endpoint: str) -> TritonRepository:
        made.append(endpoint)
        return fake_repository(endpoint)

    replicas = DnsTritonReplicas(HEADLESS, 8001, repository, resolve=resolve)

    first = await replicas.replicas()
    after_scale_down = await replicas.replicas()  # resolved again: pods come and go

    assert [r.endpoint for r in first] == ["10.1.0.3:8001", "10.1.0.7:8001"]
    assert [r.endpoint for r in after_scale_down] == ["10.1.0.3:8001"]
    assert made == ["10.1.0.3:8001", "10.1.0.7:8001", "10.1.0.3:8001"]
    assert asked == [f"{HEADLESS}:8001", f"{HEADLESS}:8001"]


@pytest.mark.parametrize(
    "failure", [socket.gaierror(socket.EAI_NONAME, "Name or service not known"), None]
)
async def test_a_name_without_ready_pods_means_triton_is_unavailable(
    failure: OSError | None,
) -> None:
    async def resolve(host: str, port: int) -> Sequence[str]:
        if failure is not None:
            raise failure
        return []

    replicas = DnsTritonReplicas(HEADLESS, 8001, fake_repository, resolve=resolve)

    with pytest.raises(TritonUnavailableError, match=HEADLESS):
        await replicas.replicas()


async def test_the_system_resolver_answers_every_address_once() -> None:
    addresses = await system_addresses("localhost", 8001)

    assert "127.0.0.1" in addresses
    assert len(addresses) == len(set(addresses))


async def test_a_fixed_replica_is_the_one_endpoint() -> None:
    only = Replica("127.0.0.1:18001", fake_repository("127.0.0.1:18001"))

    assert list(await FixedTritonReplicas(only).replicas()) == [only]


def test_endpoints_split_and_join_ipv4_and_ipv6() -> None:
    assert split_endpoint("triton:8001") == ("triton", 8001)
    assert split_endpoint("[fd00::5]:8001") == ("fd00::5", 8001)
    assert join_endpoint("10.1.0.3", 8001) == "10.1.0.3:8001"
    assert join_endpoint("fd00::5", 8001) == "[fd00::5]:8001"
    with pytest.raises(ValueError, match="host:port"):
        split_endpoint("triton")
