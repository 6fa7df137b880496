"""Pure pieces of the devstack: part selection, credentials, pid records, configs, settings."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import psutil
import pytest

from slidestream_contracts.topics import TopicSpec
from slidestream_devstack import builds, kafka, seaweedfs, stack
from slidestream_devstack.credentials import load_or_create_credentials
from slidestream_devstack.errors import StackError
from slidestream_devstack.paths import StackPaths, find_repo_root
from slidestream_devstack.process import ProcessRecord, is_alive, read_record, write_record
from slidestream_devstack.settings import DevstackSettings


def test_selecting_tusd_brings_its_store_and_hook_receiver() -> None:
    names = [part.name for part in stack.select_parts(["tusd"], with_requirements=True)]
    # tusd stores into MinIO and asks the upload service (which needs Kafka and PostgreSQL).
    assert names == ["postgres", "minio", "kafka", "tusd", "upload"]
    assert stack.PARTS_BY_NAME["upload"].phase > stack.PARTS_BY_NAME["minio"].phase


def test_down_selection_takes_only_the_named_parts() -> None:
    names = [part.name for part in stack.select_parts(["tusd"], with_requirements=False)]
    assert names == ["tusd"]


def test_no_selection_means_every_part_in_start_order() -> None:
    names = [part.name for part in stack.select_parts(None, with_requirements=True)]
    assert names == list(stack.PART_NAMES)
    assert set(names) == {
        "kafka",
        "minio",
        "seaweedfs",
        "postgres",
        "triton",
        "tusd",
        "milvus",
        "upload",
        "catalog",
        "deid",
        "convert",
        "qc",
        "inference",
    }


def test_catalog_brings_its_milvus() -> None:
    names = [part.name for part in stack.select_parts(["catalog"], with_requirements=True)]
    assert names == ["postgres", "minio", "kafka", "milvus", "catalog"]


def test_unknown_part_is_refused() -> None:
    with pytest.raises(StackError, match="unknown part"):
        stack.select_parts(["zookeeper"], with_requirements=True)


def test_no_two_parts_share_a_port() -> None:
    ports = [port for part in stack.ALL_PARTS for port in part.ports]
    assert len(ports) == len(set(ports))


def test_credentials_are_generated_once_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    first = load_or_create_credentials(path)
    assert load_or_create_credentials(path) == first
    assert path.stat().st_mode & 0o077 == 0
    assert len(first.minio_root_password) >= 8


def test_credentials_missing_a_field_keep_the_others(tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    first = load_or_create_credentials(path)
    stored = json.loads(path.read_text("utf-8"))
    del stored["postgres_password"]
    path.write_text(json.dumps(stored), "utf-8")
    second = load_or_create_credentials(path)
    assert second.minio_root_password == first.minio_root_password
    assert second.postgres_password


def test_pid_record_round_trips_and_detects_our_process(tmp_path: Path) -> None:
    me = psutil.Process(os.getpid())
    record = ProcessRecord(
        part="kafka", pid=me.pid, create_time=me.create_time(), argv=["x"], started_at=time.time()
    )
    path = tmp_path / "kafka.json"
    write_record(path, record)
    assert read_record(path) == record
    assert is_alive(record)


def test_reused_pid_is_not_ours() -> None:
    me = psutil.Process(os.getpid())
    impostor = ProcessRecord(
        part="kafka", pid=me.pid, create_time=me.create_time() - 3600, argv=[], started_at=0.0
    )
    assert not is_alive(impostor)


def test_torn_pid_record_reads_as_absent(tmp_path: Path) -> None:
    path = tmp_path / "minio.json"
    path.write_text("{not json", "utf-8")
    assert read_record(path) is None
    assert read_record(tmp_path / "missing.json") is None


def test_kafka_config_refuses_auto_created_topics(tmp_path: Path) -> None:
    properties = dict(
        line.split("=", 1) for line in kafka._server_properties(tmp_path).splitlines()
    )
    assert properties["auto.create.topics.enable"] == "false"
    assert properties["log.dirs"] == str(tmp_path)
    assert "127.0.0.1" in properties["listeners"]
    assert "0.0.0.0" not in properties["listeners"]


def test_kafka_topics_are_created_with_one_replica_and_one_in_sync(tmp_path: Path) -> None:
    properties = dict(
        line.split("=", 1) for line in kafka._server_properties(tmp_path).splitlines()
    )
    assert (properties["default.replication.factor"], properties["min.insync.replicas"]) == (
        "1",
        "1",
    )
    topic = kafka.new_topic(TopicSpec("slides.qc.v1", 12))
    assert (topic.name, topic.num_partitions, topic.replication_factor) == ("slides.qc.v1", 12, 1)
    assert topic.topic_configs == {"min.insync.replicas": "1"}


def test_kafka_cluster_id_is_a_kafka_uuid() -> None:
    cluster_id = kafka.random_cluster_id()
    assert len(cluster_id) == 22
    assert "=" not in cluster_id


def test_seaweedfs_identity_document_allows_admin() -> None:
    document = seaweedfs.s3_identities("AK", "SK")
    identities = document["identities"]
    assert isinstance(identities, list)
    (identity,) = identities
    assert identity["credentials"] == [{"accessKey": "AK", "secretKey": "SK"}]
    assert "Admin" in identity["actions"]


def test_settings_read_partitions_and_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KAFKA_TOPIC_PARTITIONS", "24")
    monkeypatch.setenv("SLIDESTREAM_HOME", str(tmp_path))
    settings = DevstackSettings()
    assert settings.kafka_topic_partitions == 24
    assert find_repo_root(settings.home) == tmp_path.resolve()
    assert StackPaths(tmp_path).env_file == tmp_path / ".local" / "stack.env"


def test_repo_root_defaults_to_the_checkout() -> None:
    root = find_repo_root()
    assert (root / "libs" / "devstack" / "pyproject.toml").exists()


def test_a_cluster_node_advertises_its_proxy_and_replicates_on_its_own_listener(
    tmp_path: Path,
) -> None:
    nodes = [
        kafka.KafkaNode(i, 20000 + i, 21000 + i, tmp_path / str(i), 22000 + i, 23000 + i)
        for i in (1, 2, 3)
    ]
    text = kafka.server_properties(nodes[1], nodes, kafka.Replication(factor=3, min_insync=2))
    properties = dict(line.split("=", 1) for line in text.splitlines())
    assert properties["node.id"] == "2"
    assert properties["controller.quorum.voters"] == (
        "1@127.0.0.1:21001,2@127.0.0.1:21002,3@127.0.0.1:21003"
    )
    assert properties["advertised.listeners"] == (
        "PLAINTEXT://127.0.0.1:22002,INTERNAL://127.0.0.1:23002"
    )
    assert "PLAINTEXT://127.0.0.1:20002" in properties["listeners"]
    assert properties["inter.broker.listener.name"] == "INTERNAL"
    assert properties["min.insync.replicas"] == "2"
    assert properties["offsets.topic.replication.factor"] == "3"


def test_a_cluster_node_advertises_each_extra_client_listener_on_its_own_address(
    tmp_path: Path,
) -> None:
    spare = kafka.ClientListener("SPARE", 24001, 25001)
    node = kafka.KafkaNode(1, 20001, 21001, tmp_path, 22001, 23001, extra_listeners=(spare,))
    text = kafka.server_properties(node, [node])
    properties = dict(line.split("=", 1) for line in text.splitlines())
    assert "SPARE://127.0.0.1:24001" in properties["listeners"].split(",")
    assert "SPARE://127.0.0.1:25001" in properties["advertised.listeners"].split(",")
    assert "SPARE:PLAINTEXT" in properties["listener.security.protocol.map"].split(",")
    assert properties["inter.broker.listener.name"] == "INTERNAL"


def test_go_binaries_are_named_after_their_package() -> None:
    assert builds.go_command_name("github.com/Shopify/toxiproxy/v2/cmd/server") == "server"
    assert builds.go_command_name("helm.sh/helm/v3/cmd/helm") == "helm"
    assert builds.go_command_name("example.com/tool/v2") == "tool"
    assert builds.go_command_name("github.com/minio/minio") == "minio"
