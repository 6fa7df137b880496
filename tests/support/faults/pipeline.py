"""The pipeline under fault: tusd and the upload, deid, convert and qc services, each a real
process on free ports, reaching Kafka, S3 and PostgreSQL only through the suite's proxies.

A scenario may start more replicas of a service (same consumer group, port and data directory
of their own; optionally on the brokers' spare proxies only) and give a service settings of its
own for a while; :meth:`Pipeline.ensure_running` undoes both.

:data:`SUITE_SETTINGS` are the settings that differ from the services' defaults; the report
prints them beside the numbers measured with them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import httpx

from slidestream_devstack.readiness import http_ok, wait_until
from slidestream_devstack.secret_files import (
    deid_pseudonym_key_file,
    deid_vault_key_file,
    read_secret,
    tusd_hooks_secret_file,
)
from slidestream_devstack.stack import make_context
from slidestream_devstack.toxiproxy import Proxy
from slidestream_devstack.tusd import TusdPart, tusd_command
from tests.support.faults.processes import Managed
from tests.support.faults.servers import LOOPBACK, FaultServers
from tests.support.upload import free_port

SERVICES: Final = ("upload", "deid", "convert", "qc")
READY_TIMEOUT_S = 180.0
READYZ_TIMEOUT_S = 5.0
SLIDESTREAM = Path(sys.executable).with_name("slidestream")

SUITE_SETTINGS: Final[dict[str, str]] = {
    # A message that waits for a dependency is retried at least this often (default 30 s).
    "KAFKA_RETRY_BACKOFF_MAX_S": "10",
    # The upload reconciler finishes an upload whose hooks or finalizer died (defaults 30 s).
    "RECONCILE_INTERVAL_S": "5",
    "FINALIZE_LEASE_S": "10",
    # One tenant uploads a whole batch in parallel and polls each upload's verdict.
    "RATE_LIMIT_TOKEN_PER_S": "1000",
    "RATE_LIMIT_TOKEN_BURST": "1000",
    "RATE_LIMIT_ADDRESS_PER_S": "1000",
    "RATE_LIMIT_ADDRESS_BURST": "1000",
}


@dataclass
class Service:
    name: str
    port: int
    process: Managed

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def ready(self) -> bool:
        return self.process.alive and http_ok(f"{self.url}/readyz")


@dataclass
class Pipeline:
    servers: FaultServers
    run_dir: Path
    services: dict[str, Service] = field(default_factory=dict)
    replicas: dict[str, Service] = field(default_factory=dict)
    """Extra processes of a service, by name (``convert-2``...)."""
    overrides: dict[str, dict[str, str]] = field(default_factory=dict)
    """A service's settings beyond :data:`SUITE_SETTINGS`, from its next start on."""
    replica_serial: int = 1
    tusd: Managed | None = None
    hooks_port: int = field(default_factory=free_port)
    tus_port: int = field(default_factory=free_port)

    @property
    def upload_api(self) -> str:
        return self.services["upload"].url

    tus_proxy: Proxy | None = None
    """The partners' way to tusd (``tusd``): a toxic on it slows or cuts their transfers."""

    @property
    def tus_url(self) -> str:
        """tusd through its proxy: the address partners are given (``TUS_URL``)."""
        assert self.tus_proxy is not None, "pipeline not started"
        return f"http://{self.tus_proxy.listen}/files/"

    def _env(self, name: str, port: int, *, data_name: str | None = None) -> dict[str, str]:
        data = self.run_dir / "data" / (data_name or name)
        data.mkdir(parents=True, exist_ok=True)
        env = {
            **self.servers.service_env(),
            **SUITE_SETTINGS,
            **self.overrides.get(name, {}),
            "HTTP_HOST": LOOPBACK,
            "HTTP_PORT": str(port),
            "DATA_DIR": str(data),
            "WORK_DIR": str(data / "scratch"),
            "LOG_JSON": "true",
        }
        secrets = self.run_dir / "secrets"
        if name == "upload":
            env |= {
                "HOOKS_PORT": str(self.hooks_port),
                "TUSD_HOOKS_SECRET_FILE": str(tusd_hooks_secret_file(secrets)),
                "TUS_URL": self.tus_url,
            }
        if name == "deid":
            env |= {
                "PSEUDONYM_KEY_FILE": str(deid_pseudonym_key_file(secrets)),
                "PSEUDONYM_KEY_VERSION": "1",
                "VAULT_KEY_FILE": str(deid_vault_key_file(secrets)),
                "VAULT_KEY_ID": "1",
            }
        return env

    def start(self) -> None:
        self.tus_proxy = self.servers.add_proxy("tusd", self.tus_port)
        for name in SERVICES:
            port = free_port()
            argv = [sys.executable, "-m", f"slidestream_{name}.main"]
            process = Managed(name, argv, self.run_dir, env=self._env(name, port))
            self.services[name] = Service(name, port, process)
            process.start()
        self._start_tusd()
        with ThreadPoolExecutor(max_workers=len(self.services)) as pool:
            for future in [pool.submit(self.wait_ready, name) for name in self.services]:
                future.result()

    def _start_tusd(self) -> None:
        ctx = make_context()
        TusdPart().build(ctx)
        service_env = self.servers.service_env()
        argv, env = tusd_command(
            TusdPart().binary(ctx),
            host=LOOPBACK,
            port=self.tus_port,
            s3_endpoint=service_env["S3_ENDPOINT"],
            s3_access_key=service_env["S3_ACCESS_KEY"],
            s3_secret_key=service_env["S3_SECRET_KEY"],
            hooks_url=f"http://{LOOPBACK}:{self.hooks_port}/hooks/tusd",
            hooks_secret=read_secret(tusd_hooks_secret_file(self.run_dir / "secrets")),
        )
        self.tusd = Managed("tusd", argv, self.run_dir, env=env)
        self.restart_tusd()

    def restart_tusd(self) -> float:
        """Start tusd (again, after a kill); seconds until it answers."""
        assert self.tusd is not None
        started = time.monotonic()
        self.tusd.start()
        wait_until(
            lambda: http_ok(self.tus_url, method="OPTIONS"),
            what="tusd",
            timeout_s=READY_TIMEOUT_S,
            alive=lambda: self.tusd is not None and self.tusd.alive,
            log_path=self.tusd.log_path,
        )
        return time.monotonic() - started

    def wait_ready(self, name: str) -> float:
        """Seconds until ``name`` (a service or a replica) answers ``/readyz``; fails with its
        log if it never does."""
        service = self.services.get(name) or self.replicas[name]
        return wait_until(
            service.ready,
            what=name,
            timeout_s=READY_TIMEOUT_S,
            alive=lambda: service.process.alive,
            log_path=service.process.log_path,
        )

    def readiness(self) -> dict[str, str]:
        """Each process's ``/readyz`` answer (replicas included): ``ready`` or the
        dependencies it names as failing (``object_store: TimeoutError``)."""
        answers: dict[str, str] = {}
        for name, service in {**self.services, **self.replicas}.items():
            try:
                response = httpx.get(f"{service.url}/readyz", timeout=READYZ_TIMEOUT_S)
                failures = response.json().get("failures", {})
            except (httpx.HTTPError, ValueError) as error:
                answers[name] = f"no answer ({type(error).__name__})"
                continue
            answers[name] = ", ".join(f"{k}: {v}" for k, v in failures.items()) or "ready"
        return answers

    def liveness(self) -> dict[str, str]:
        """Each process's ``/healthz`` answer (replicas included): ``ok``, or ``stalled`` with
        the topics whose handling went without a poll and for how long."""
        answers: dict[str, str] = {}
        for name, service in {**self.services, **self.replicas}.items():
            try:
                response = httpx.get(f"{service.url}/healthz", timeout=READYZ_TIMEOUT_S)
                body = response.json()
            except (httpx.HTTPError, ValueError) as error:
                answers[name] = f"no answer ({type(error).__name__})"
                continue
            stalled = body.get("stalled_s") or {}
            answers[name] = str(body.get("status")) + "".join(
                f" {topic} {seconds:.0f} s" for topic, seconds in stalled.items()
            )
        return answers

    # -- replicas and settings -----------------------------------------------------------------
    def start_replica(self, service: str, *, spare: bool = False, wait: bool = True) -> Service:
        """One more process of ``service`` in its consumer group (ready, unless not ``wait``ed
        for); ``spare``: its Kafka clients bootstrap from, and so use only, the brokers' spare
        proxies."""
        self.replica_serial += 1
        name = f"{service}-{self.replica_serial}"
        port = free_port()
        env = self._env(service, port, data_name=name)
        if spare:
            env["KAFKA_BOOTSTRAP"] = self.servers.spare_bootstrap
        argv = [sys.executable, "-m", f"slidestream_{service}.main"]
        replica = Service(name, port, Managed(name, argv, self.run_dir, env=env))
        self.replicas[name] = replica
        replica.process.start()
        if wait:
            self.wait_ready(name)
        return replica

    def stop_replica(self, name: str, *, kill: bool = False) -> None:
        """SIGKILL (``kill``) or a graceful stop (SIGTERM, waited for)."""
        replica = self.replicas.pop(name)
        if kill:
            replica.process.kill()
        replica.process.stop()

    def configure(self, name: str, settings: dict[str, str]) -> None:
        """``name``'s settings beyond the suite's, from its next (re)start on; ``{}``: none."""
        self.overrides[name] = dict(settings)
        service = self.services[name]
        service.process.env = self._env(name, service.port)

    def kill(self, name: str) -> float:
        return self.services[name].process.kill()

    def restart(self, name: str) -> float:
        """Start ``name`` again (after a kill); seconds until it is ready."""
        started = time.monotonic()
        self.services[name].process.start()
        self.wait_ready(name)
        return time.monotonic() - started

    def ensure_running(self) -> None:
        """Every service up and ready with the suite's settings, and no extra replica (a
        scenario that failed half-way may have left one down, or reconfigured), tusd too."""
        if self.tusd is not None and not self.tusd.alive:
            self.restart_tusd()
        for name in list(self.replicas):
            self.stop_replica(name)
        for name in [n for n, settings in self.overrides.items() if settings]:
            self.services[name].process.stop()
            self.configure(name, {})
        for name, service in self.services.items():
            if not service.process.alive:
                service.process.start()
            self.wait_ready(name)

    def stop(self) -> None:
        if self.tusd is not None:
            self.tusd.stop()
        for service in [*self.replicas.values(), *self.services.values()]:
            service.process.stop()

    def create_tenant(self, name: str) -> str:
        """A tenant and its token, made as an operator makes them (``slidestream admin``)."""
        env_file = self.run_dir / "admin.env"
        env_file.write_text(
            f"DATABASE_URL={self.servers.direct_database_url()}\n", encoding="utf-8"
        )
        created = subprocess.run(
            [
                str(SLIDESTREAM),
                "admin",
                "tenant",
                "create",
                name,
                "--json",
                "--env-file",
                str(env_file),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert created.returncode == 0, created.stderr[-2000:]
        return str(json.loads(created.stdout.strip().splitlines()[-1])["token"])
