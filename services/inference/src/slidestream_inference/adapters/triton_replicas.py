"""Which Triton servers the models API must talk to: every replica, each by its own address.

Triton in explicit model-control mode loads a model only on the server that received the
request, and a restarted server has nothing loaded. Behind a load-balancing Service a load
reaches one replica at random, so loads, unloads and the reconciler address each replica
directly. In Kubernetes the replicas are the A records of a headless Service (``clusterIP:
None``), one per ready pod; the name is resolved again on every call, since pods come, go and
change address. Without such a name (the local stack) the one ``TRITON_GRPC`` endpoint is the
only replica.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from slidestream_inference.adapters.triton import TritonUnavailableError
from slidestream_inference.adapters.triton_repository import TritonRepository, VersionState

Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
"""Host name and port → the IP addresses the name has now."""


@dataclass(frozen=True, slots=True)
class Replica:
    endpoint: str
    """``host:port`` of this replica's gRPC endpoint (a pod address in Kubernetes)."""
    repository: TritonRepository


@dataclass(frozen=True, slots=True)
class ReplicaStates:
    """What one replica said of a model's versions."""

    endpoint: str
    versions: Mapping[str, VersionState] = field(default_factory=dict)
    down: str = ""
    """Why this replica's states are unknown; empty when it answered."""


class TritonReplicas(Protocol):
    async def replicas(self) -> Sequence[Replica]:
        """Every Triton replica serving now, in a stable order; :class:`TritonUnavailableError`
        when there is none."""
        ...


class FixedTritonReplicas:
    """A known set of replicas: the single endpoint of the local stack (one Triton)."""

    def __init__(self, *replicas: Replica) -> None:
        self._replicas = tuple(replicas)

    async def replicas(self) -> Sequence[Replica]:
        return self._replicas


def split_endpoint(endpoint: str) -> tuple[str, int]:
    """``host:port`` → host and port (``[v6]:port`` too)."""
    host, separator, port = endpoint.rpartition(":")
    if not separator or not port.isdigit():
        raise ValueError(f"{endpoint!r} is not host:port")
    return host.strip("[]"), int(port)


def join_endpoint(address: str, port: int) -> str:
    """An address and port as gRPC's target string (an IPv6 address in brackets)."""
    if isinstance(ipaddress.ip_address(address), ipaddress.IPv6Address):
        return f"[{address}]:{port}"
    return f"{address}:{port}"


async def system_addresses(host: str, port: int) -> Sequence[str]:
    """The addresses the system resolver gives ``host`` (every A/AAAA record, deduplicated)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


class DnsTritonReplicas:
    """The replicas behind a headless Service: one per address its name resolves to, each on
    ``port``; ``repository`` makes the client of one endpoint."""

    def __init__(
        self,
        dns_name: str,
        port: int,
        repository: Callable[[str], TritonRepository],
        *,
        resolve: Resolver = system_addresses,
    ) -> None:
        self._dns_name = dns_name
        self._port = port
        self._repository = repository
        self._resolve = resolve

    async def replicas(self) -> Sequence[Replica]:
        try:
            addresses = await self._resolve(self._dns_name, self._port)
        except (OSError, UnicodeError) as error:  # socket.gaierror: no ready pod, DNS down
            raise TritonUnavailableError(
                f"no Triton replica: {self._dns_name} does not resolve ({error})"
            ) from error
        if not addresses:
            raise TritonUnavailableError(f"no Triton replica: {self._dns_name} has no address")
        endpoints = sorted(join_endpoint(address, self._port) for address in set(addresses))
        return [Replica(endpoint, self._repository(endpoint)) for endpoint in endpoints]
