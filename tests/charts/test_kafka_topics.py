"""Kafka topics in the chart: a Job creates every topic of the contracts with the replication
factor and min.insync.replicas of the values (3 / 2 by default), and the chart refuses settings
no cluster could honour. The Job's script is run here against stand-ins for Kafka's tools that
record their arguments."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest

from slidestream_contracts.topics import all_topics
from slidestream_devstack.process import child_env
from tests.support.charts import container, jobs, of_kind, refusal, render

TOPICS_JOB = "rel-slidestream-kafka-topics-"
RECORDER = """#!/bin/sh
echo "$(basename "$0") $*" >> "$CALLS"
"""
"""A stand-in for kafka-topics.sh and kafka-configs.sh: one line per call, its arguments."""


def topics_job(docs: list[dict[str, Any]]) -> dict[str, Any]:
    [job] = jobs(docs, TOPICS_JOB)
    return job


def env_values(job: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container(job)["env"] if "value" in e}


def run_the_jobs_script(docs: list[dict[str, Any]], tmp_path: Path) -> list[list[str]]:
    """Run create-topics.sh as the Job would, with recording tools; every call's arguments."""
    job = topics_job(docs)
    files = of_kind(docs, "ConfigMap")["rel-slidestream-kafka-topics"]["data"]
    mounted = tmp_path / "etc"
    mounted.mkdir()
    for name, text in files.items():
        (mounted / name).write_text(text)
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("kafka-topics.sh", "kafka-configs.sh"):
        (tools / tool).write_text(RECORDER)
        (tools / tool).chmod(0o755)
    calls = tmp_path / "calls"
    [command, script] = container(job)["command"]
    assert (command, Path(script).parent) == ("sh", Path("/etc/slidestream"))
    env = {**env_values(job), "KAFKA_BIN": str(tools), "CALLS": str(calls)}
    subprocess.run(
        ["sh", str(mounted / Path(script).name)],
        env=child_env(env),
        check=True,
        timeout=60,
    )
    return [shlex.split(line) for line in calls.read_text().splitlines()]


def flag(call: list[str], name: str) -> str:
    return call[call.index(name) + 1]


def test_the_job_creates_every_contract_topic_with_3_replicas_and_2_in_sync(
    helm: Path, tmp_path: Path
) -> None:
    docs = render(helm, **{"kafka.partitions": 24})
    env = env_values(topics_job(docs))
    assert env["KAFKA_BOOTSTRAP"] == "kafka.data:9092"
    calls = run_the_jobs_script(docs, tmp_path)

    created = {flag(c, "--topic"): c for c in calls if c[0] == "kafka-topics.sh"}
    assert {name: int(flag(c, "--partitions")) for name, c in created.items()} == {
        spec.name: spec.partitions for spec in all_topics(24)
    }
    for call in created.values():
        assert "--create" in call and "--if-not-exists" in call
        assert flag(call, "--bootstrap-server") == "kafka.data:9092"
        assert flag(call, "--replication-factor") == "3"
        assert flag(call, "--config") == "min.insync.replicas=2"
    # A topic that already existed (by hand, or from an earlier release) gets the setting too.
    altered = {flag(c, "--entity-name"): c for c in calls if c[0] == "kafka-configs.sh"}
    assert set(altered) == set(created)
    for call in altered.values():
        assert flag(call, "--entity-type") == "topics"
        assert flag(call, "--add-config") == "min.insync.replicas=2"


def test_replication_settings_come_from_the_values(helm: Path, tmp_path: Path) -> None:
    docs = render(
        helm, **{"kafka.topics.replicationFactor": 5, "kafka.topics.minInsyncReplicas": 3}
    )
    calls = run_the_jobs_script(docs, tmp_path)
    created = [c for c in calls if c[0] == "kafka-topics.sh"]
    assert {flag(c, "--replication-factor") for c in created} == {"5"}
    assert {flag(c, "--config") for c in created} == {"min.insync.replicas=3"}


def test_a_changed_setting_is_a_new_job(helm: Path) -> None:
    first = topics_job(render(helm))["metadata"]["name"]
    again = topics_job(render(helm))["metadata"]["name"]
    changed = topics_job(render(helm, **{"kafka.topics.minInsyncReplicas": 1}))
    assert first == again != changed["metadata"]["name"]
    assert len(first) <= 63


def test_the_job_runs_as_the_services_do(helm: Path) -> None:
    spec = topics_job(render(helm))["spec"]["template"]["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    main = container(topics_job(render(helm)))
    assert main["image"] == "docker.io/apache/kafka:4.1.1"
    assert main["securityContext"]["readOnlyRootFilesystem"] is True
    assert {m["mountPath"] for m in main["volumeMounts"]} == {"/etc/slidestream", "/tmp"}


def test_no_job_when_topics_are_someone_elses(helm: Path) -> None:
    docs = render(helm, **{"kafka.topics.create": False})
    assert jobs(docs, TOPICS_JOB) == []
    assert "rel-slidestream-kafka-topics" not in of_kind(docs, "ConfigMap")


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        (
            {"kafka.topics.replicationFactor": 2, "kafka.topics.minInsyncReplicas": 3},
            "kafka.topics.minInsyncReplicas (3) cannot exceed kafka.topics.replicationFactor (2)",
        ),
        (
            {"kafka.bootstrap": "", "inChart.kafka.enabled": True},
            "the in-chart Kafka is a single broker: set kafka.topics.replicationFactor=1",
        ),
    ],
)
def test_settings_no_cluster_could_honour_are_refused(
    helm: Path, values: dict[str, object], complaint: str
) -> None:
    assert complaint in refusal(helm, **values)


def test_the_in_chart_kafka_takes_one_replica_and_admits_the_job(helm: Path) -> None:
    docs = render(
        helm,
        **{
            "kafka.bootstrap": "",
            "inChart.kafka.enabled": True,
            "kafka.topics.replicationFactor": 1,
            "kafka.topics.minInsyncReplicas": 1,
        },
    )
    env = env_values(topics_job(docs))
    assert env["KAFKA_BOOTSTRAP"] == "rel-slidestream-kafka:9092"
    assert (env["REPLICATION_FACTOR"], env["MIN_INSYNC_REPLICAS"]) == ("1", "1")
    job_labels = topics_job(docs)["spec"]["template"]["metadata"]["labels"]
    [rule] = of_kind(docs, "NetworkPolicy")["rel-slidestream-kafka"]["spec"]["ingress"]
    [peer] = rule["from"]
    [names] = peer["podSelector"]["matchExpressions"]
    assert job_labels["app.kubernetes.io/name"] in names["values"]
