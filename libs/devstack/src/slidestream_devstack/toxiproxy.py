"""Toxiproxy, the TCP proxy whose faults are set through an HTTP API: the fault suite
(``tests/faults``, ``make test-faults``) places one proxy between the services and each server
(every Kafka broker, S3, PostgreSQL) and cuts, slows or breaks the connections through it.

Built from its Go module like MinIO and tusd (pinned in :mod:`slidestream_devstack.versions`);
``python -m slidestream_devstack.tools toxiproxy`` builds it and prints its path. The API is
Toxiproxy's v2 REST API (``/proxies``, ``/proxies/<name>/toxics``, ``/reset``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import httpx
from rich.console import Console

from slidestream_devstack import versions
from slidestream_devstack.builds import go_install
from slidestream_devstack.paths import StackPaths

BINARY_NAME: Final = "toxiproxy-server"
API_TIMEOUT_S: Final = 10.0
Stream = Literal["upstream", "downstream"]
"""A toxic acts on what the client sends (upstream) or on what the server answers."""


def ensure_toxiproxy(paths: StackPaths, console: Console) -> Path:
    """The pinned ``toxiproxy-server`` binary in ``.local/bin``, built on first use."""
    paths.ensure()
    binary = paths.bin / BINARY_NAME
    go_install(
        module=versions.TOXIPROXY_MODULE,
        version=versions.TOXIPROXY_VERSION,
        binary=binary,
        console=console,
        log_path=paths.logs / "toxiproxy-build.log",
    )
    return binary


def toxiproxy_command(binary: Path, *, host: str, port: int) -> list[str]:
    """The server's command line: its API on ``host:port``, no proxy until one is created."""
    return [str(binary), "-host", host, "-port", str(port)]


@dataclass(frozen=True, slots=True)
class Proxy:
    name: str
    listen: str
    """``host:port`` the clients connect to."""
    upstream: str
    """``host:port`` of the real server."""


@dataclass(frozen=True, slots=True)
class ToxiproxyClient:
    """The few calls of Toxiproxy's API the fault suite makes (each raises on an error answer)."""

    url: str
    """``http://host:port`` of the API."""

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = httpx.request(method, f"{self.url}{path}", json=body, timeout=API_TIMEOUT_S)
        response.raise_for_status()
        return response.json() if response.content else None

    def version(self) -> str:
        return str(self._call("GET", "/version"))

    def create(self, proxy: Proxy) -> None:
        body = {"name": proxy.name, "listen": proxy.listen, "upstream": proxy.upstream}
        self._call("POST", "/proxies", {**body, "enabled": True})

    def set_enabled(self, name: str, enabled: bool) -> None:
        """Disabled, the proxy closes its connections and refuses new ones (a server that is
        unreachable, as when its host is down); enabled again, it accepts them."""
        self._call("POST", f"/proxies/{name}", {"enabled": enabled})

    def add_toxic(
        self,
        proxy: str,
        name: str,
        kind: str,
        attributes: dict[str, float | int],
        *,
        stream: Stream = "downstream",
        toxicity: float = 1.0,
    ) -> None:
        """``kind``: Toxiproxy's toxic type (``latency``, ``timeout``, ``reset_peer``...)."""
        body = {
            "name": name,
            "type": kind,
            "stream": stream,
            "toxicity": toxicity,
            "attributes": attributes,
        }
        self._call("POST", f"/proxies/{proxy}/toxics", body)

    def remove_toxic(self, proxy: str, name: str) -> None:
        self._call("DELETE", f"/proxies/{proxy}/toxics/{name}")

    def reset(self) -> None:
        """Every proxy enabled again and every toxic removed."""
        self._call("POST", "/reset")
