"""The fault suite's servers, on free loopback ports, each behind a Toxiproxy proxy.

* Kafka: three combined broker-controllers (KRaft), replication factor 3 and
  ``min.insync.replicas`` 2 — with ``acks=all`` an acknowledged record is on two brokers.
  Each broker advertises its proxy to clients and replicates over a listener of its own, so a
  fault on the clients' path does not also cut replication.
* Each broker also has a spare client listener behind a proxy of its own (``kafka-<id>-spare``):
  a client bootstrapped through the spare proxies is told their addresses, so an extra replica
  of a service can be cut off from every broker while the others keep their path.
* MinIO (S3) and PostgreSQL, each with one proxy.

Data lives under ``<repo>/.local/faults/`` (wiped at each start); the binaries and Kafka's jars
are the local stack's build artefacts (``.local/bin``, ``.local/kafka/libs``), built when missing
exactly as ``slidestream stack up`` builds them.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from rich.console import Console

from slidestream_contracts.topics import all_topics
from slidestream_devstack.asyncio_bridge import run_sync
from slidestream_devstack.buckets import ensure_buckets, s3_client
from slidestream_devstack.credentials import Credentials
from slidestream_devstack.kafka import (
    LOG4J2_PROPERTIES,
    ClientListener,
    KafkaNode,
    KafkaPart,
    Replication,
    ensure_topics,
    format_storage,
    jvm_options,
    random_cluster_id,
    server_properties,
)
from slidestream_devstack.minio import MinioPart, minio_command
from slidestream_devstack.part import unprivileged_user
from slidestream_devstack.postgres import OS_USER, PostgresServer
from slidestream_devstack.readiness import http_ok, wait_until
from slidestream_devstack.stack import make_context
from slidestream_devstack.toxiproxy import (
    Proxy,
    ToxiproxyClient,
    ensure_toxiproxy,
    toxiproxy_command,
)
from tests.support.faults.processes import Managed, stop_leftovers
from tests.support.upload import free_port

LOOPBACK = "127.0.0.1"
BROKERS = 3
REPLICATION = Replication(factor=3, min_insync=2)
TOPIC_PARTITIONS = 3
"""Per pipeline topic: one led by each broker (dead-letter topics keep one)."""
KAFKA_HEAP = "384m"
APPEND_TIME = "log.message.timestamp.type=LogAppendTime\n"
"""Records carry the time the leader appended them, not the producer's: a send retried across a
failover then dates from when it landed, which is what the recovery times measure."""
READY_TIMEOUT_S = 180.0


@dataclass
class Broker:
    node: KafkaNode
    proxy: Proxy
    process: Managed
    spare: Proxy
    """The proxy of the broker's spare client listener."""


@dataclass
class FaultServers:
    """Start with :meth:`start`, stop with :meth:`stop`; the proxies' names are ``kafka-<id>``,
    ``kafka-<id>-spare``, ``s3`` and ``postgres``."""

    run_dir: Path
    console: Console = field(default_factory=lambda: Console(stderr=True))
    credentials: Credentials = field(default_factory=Credentials.generate)
    brokers: list[Broker] = field(default_factory=list)
    processes: list[Managed] = field(default_factory=list)
    toxiproxy: ToxiproxyClient | None = None
    postgres: PostgresServer | None = None
    s3_port: int = 0
    s3_proxy: Proxy | None = None
    postgres_proxy: Proxy | None = None

    # -- addresses ---------------------------------------------------------------------------
    @property
    def bootstrap(self) -> str:
        """Every broker, through its proxy (what services and the checks connect to)."""
        return ",".join(broker.proxy.listen for broker in self.brokers)

    @property
    def spare_bootstrap(self) -> str:
        """Every broker, through its spare proxy: a client bootstrapped here uses only those."""
        return ",".join(broker.spare.listen for broker in self.brokers)

    @property
    def proxies(self) -> ToxiproxyClient:
        assert self.toxiproxy is not None, "servers not started"
        return self.toxiproxy

    def service_env(self) -> dict[str, str]:
        """The servers' variables of a service: Kafka, S3 and PostgreSQL through the proxies."""
        assert self.s3_proxy is not None and self.postgres_proxy is not None
        assert self.postgres is not None
        return {
            "KAFKA_BOOTSTRAP": self.bootstrap,
            "S3_ENDPOINT": f"http://{self.s3_proxy.listen}",
            "S3_ACCESS_KEY": self.credentials.minio_root_user,
            "S3_SECRET_KEY": self.credentials.minio_root_password,
            "DATABASE_URL": self.postgres.urls(self.postgres_proxy.listen)["DATABASE_URL"],
        }

    def direct_s3_address(self) -> str:
        """MinIO itself, bypassing the proxy (the checks read the buckets while it is cut)."""
        return f"{LOOPBACK}:{self.s3_port}"

    def direct_database_url(self) -> str:
        assert self.postgres is not None
        return self.postgres.urls()["DATABASE_URL"]

    # -- life cycle --------------------------------------------------------------------------
    def start(self) -> None:
        stop_leftovers(self.run_dir)
        for folder in ("kafka", "minio", "postgres", "logs"):
            shutil.rmtree(self.run_dir / folder, ignore_errors=True)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        ctx = make_context(console=self.console)
        KafkaPart().build(ctx)
        MinioPart().build(ctx)
        toxiproxy_binary = ensure_toxiproxy(ctx.paths, self.console)
        api_port = free_port()
        self._launch(
            Managed(
                "toxiproxy",
                toxiproxy_command(toxiproxy_binary, host=LOOPBACK, port=api_port),
                self.run_dir,
            )
        )
        self.toxiproxy = ToxiproxyClient(f"http://{LOOPBACK}:{api_port}")
        self._await("toxiproxy", lambda: http_ok(f"{self.proxies.url}/version"))
        self._start_postgres()
        self._start_minio(MinioPart().binary(ctx))
        self._start_kafka(ctx.paths.part_dir("kafka") / "libs")
        self.wait_for_postgres()
        assert self.postgres is not None
        self.postgres.ensure_database()
        self.wait_for_minio()
        ensure_buckets(
            s3_client(
                self.direct_s3_address(),
                self.credentials.minio_root_user,
                self.credentials.minio_root_password,
            )
        )
        self._await("kafka", self.kafka_ready)
        run_sync(
            ensure_topics(
                all_topics(TOPIC_PARTITIONS),
                bootstrap=self.bootstrap,
                replication=REPLICATION,
            )
        )

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()

    def _launch(self, process: Managed) -> Managed:
        self.processes.append(process)
        process.start()
        return process

    def _await(self, what: str, check: Callable[[], bool]) -> None:
        wait_until(check, what=what, timeout_s=READY_TIMEOUT_S)

    def add_proxy(self, name: str, upstream_port: int) -> Proxy:
        """A new proxy on a free port in front of ``upstream_port``."""
        proxy = Proxy(name, f"{LOOPBACK}:{free_port()}", f"{LOOPBACK}:{upstream_port}")
        self.proxies.create(proxy)
        return proxy

    def _start_postgres(self) -> None:
        self.postgres = PostgresServer(
            self.run_dir / "postgres" / "data", free_port(), self.credentials.postgres_password
        )
        self.postgres.initdb(console=self.console, log_path=self.run_dir / "logs" / "initdb.log")
        self._launch(
            Managed("postgres", self.postgres.argv(), self.run_dir, user=unprivileged_user(OS_USER))
        )
        self.postgres_proxy = self.add_proxy("postgres", self.postgres.port)

    def _start_minio(self, binary: Path) -> None:
        self.s3_port = free_port()
        argv, env = minio_command(
            binary,
            data_dir=self.run_dir / "minio" / "data",
            api_address=self.direct_s3_address(),
            console_address=f"{LOOPBACK}:{free_port()}",
            root_user=self.credentials.minio_root_user,
            root_password=self.credentials.minio_root_password,
        )
        (self.run_dir / "minio" / "data").mkdir(parents=True)
        self._launch(Managed("minio", argv, self.run_dir, env=env))
        self.s3_proxy = self.add_proxy("s3", self.s3_port)

    def _start_kafka(self, libs: Path) -> None:
        nodes = []
        for node_id in range(1, BROKERS + 1):
            client_port = free_port()
            proxy = self.add_proxy(f"kafka-{node_id}", client_port)
            spare_port = free_port()
            spare = self.add_proxy(f"kafka-{node_id}-spare", spare_port)
            node = KafkaNode(
                node_id=node_id,
                client_port=client_port,
                controller_port=free_port(),
                data_dir=self.run_dir / "kafka" / f"node-{node_id}" / "data",
                advertised_port=int(proxy.listen.rsplit(":", 1)[1]),
                internal_port=free_port(),
                extra_listeners=(
                    ClientListener("SPARE", spare_port, int(spare.listen.rsplit(":", 1)[1])),
                ),
            )
            nodes.append((node, proxy, spare))
        log4j = self.run_dir / "kafka" / "log4j2.properties"
        log4j.parent.mkdir(parents=True, exist_ok=True)
        log4j.write_text(LOG4J2_PROPERTIES, encoding="utf-8")
        options = jvm_options(libs, log4j, heap_max=KAFKA_HEAP)
        java = shutil.which("java") or "java"
        cluster_id = random_cluster_id()
        voters = [node for node, _, _ in nodes]
        for node, proxy, spare in nodes:
            config = node.data_dir.parent / "server.properties"
            node.data_dir.mkdir(parents=True)
            config.write_text(
                server_properties(node, voters, REPLICATION) + APPEND_TIME, encoding="utf-8"
            )
            format_storage(
                java,
                options,
                config,
                cluster_id,
                console=self.console,
                log_path=self.run_dir / "logs" / f"kafka-{node.node_id}-format.log",
            )
            argv = [java, *options, "kafka.Kafka", str(config)]
            process = self._launch(Managed(f"kafka-{node.node_id}", argv, self.run_dir))
            self.brokers.append(Broker(node, proxy, process, spare))

    # -- MinIO's and PostgreSQL's processes -------------------------------------------------
    def process(self, name: str) -> Managed:
        """The running server ``name`` (``minio``, ``postgres``, ``kafka-<id>``...)."""
        return next(p for p in self.processes if p.name == name)

    def wait_for_minio(self) -> float:
        """Seconds until MinIO answers its readiness probe (itself, not through the proxy)."""
        started = time.monotonic()
        self._await(
            "minio", lambda: http_ok(f"http://{self.direct_s3_address()}/minio/health/ready")
        )
        return time.monotonic() - started

    def wait_for_postgres(self) -> float:
        """Seconds until PostgreSQL accepts connections (crash recovery done)."""
        started = time.monotonic()
        self._await("postgres", lambda: self.postgres is not None and self.postgres.is_ready())
        return time.monotonic() - started

    def ensure_running(self) -> None:
        """Every server up again (a scenario may have stopped one), MinIO and PostgreSQL
        ready; the brokers' readiness is :meth:`wait_for_brokers`."""
        for process in self.processes:
            process.start()
        self.wait_for_postgres()
        self.wait_for_minio()

    # -- Kafka's state -----------------------------------------------------------------------
    def kafka_ready(self) -> bool:
        """Every broker registered with the controllers and answering through its proxy."""
        # aiokafka logs every refused connection as an error; here they are the expected answer.
        kafka_log = logging.getLogger("aiokafka")
        level = kafka_log.level
        kafka_log.setLevel(logging.CRITICAL)
        try:
            return len(run_sync(self._broker_ids())) == BROKERS
        except Exception:
            return False
        finally:
            kafka_log.setLevel(level)

    async def _broker_ids(self) -> list[int]:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=5000)
        await admin.start()
        try:
            cluster = await admin.describe_cluster()
        finally:
            await admin.close()
        return sorted(int(broker["node_id"]) for broker in cluster["brokers"])

    async def _describe(self, topics: list[str]) -> list[dict[str, Any]]:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=5000)
        await admin.start()
        try:
            described: list[dict[str, Any]] = await admin.describe_topics(topics)
            return described
        finally:
            await admin.close()

    def leaders(self, topics: list[str]) -> dict[tuple[str, int], int]:
        """The leader of each partition of ``topics``."""
        return {
            (str(topic["topic"]), int(partition["partition"])): int(partition["leader"])
            for topic in run_sync(self._describe(topics))
            for partition in topic["partitions"]
        }

    async def _group(self, group: str) -> list[tuple[str, bytes]]:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=5000)
        await admin.start()
        try:
            responses = await admin.describe_consumer_groups([group])
        finally:
            await admin.close()
        # DescribeGroups: (error, group, state, protocol type, protocol, members...); a member:
        # (member id, client id, client host, metadata, assignment).
        return [
            (str(member[0]), bytes(member[4]))
            for response in responses
            for described in response.groups
            for member in described[5]
        ]

    def group_members(self, group: str) -> dict[str, list[str]]:
        """The members of consumer ``group`` now, each with its assigned partitions
        (``topic/partition``)."""
        members: dict[str, list[str]] = {}
        for member_id, assignment in run_sync(self._group(group)):
            decoded = ConsumerProtocolMemberAssignment.decode(assignment) if assignment else None
            members[member_id] = sorted(
                f"{topic}/{partition}"
                for topic, partitions in (decoded.assignment if decoded else [])
                for partition in partitions
            )
        return members

    def under_replicated(self) -> int:
        """Partitions of the platform's topics with fewer in-sync replicas than replicas."""
        topics = [spec.name for spec in all_topics(TOPIC_PARTITIONS)]
        return sum(
            1
            for topic in run_sync(self._describe(topics))
            for partition in topic["partitions"]
            if len(partition["isr"]) < len(partition["replicas"])
        )

    def wait_in_sync(self) -> float:
        """Seconds until every partition is fully replicated again (a broker rejoined)."""
        started = time.monotonic()
        self._await("kafka replicas in sync", lambda: self.under_replicated() == 0)
        return time.monotonic() - started

    def broker(self, node_id: int) -> Broker:
        return next(b for b in self.brokers if b.node.node_id == node_id)

    def wait_for_brokers(self) -> float:
        """Seconds until every broker is back in the cluster."""
        started = time.monotonic()
        self._await("kafka brokers", self.kafka_ready)
        return time.monotonic() - started
