"""A NetworkPolicy per component: each admits only its callers (the hooks port tusd alone) and
reaches only the servers it uses, whether they are the chart's own or outside it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support.charts import CHART, REQUIRED, of_kind, render, run_helm

SERVICES = ("catalog", "convert", "deid", "inference", "qc", "upload")
STEPS = ("convert", "deid", "qc")
ANY = "any"
"""A rule without peers: every source or destination."""
IN_CHART = {
    "inChart.kafka.enabled": True,
    "inChart.minio.enabled": True,
    "inChart.postgres.enabled": True,
    "kafka.bootstrap": "",
    "objectStore.endpoint": "",
    "database.existingSecret": "",
    "kafka.topics.replicationFactor": 1,  # the in-chart Kafka is one broker
    "kafka.topics.minInsyncReplicas": 1,
}

Rule = dict[str, Any]


def policies(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        name.removeprefix("rel-slidestream-"): doc["spec"]
        for name, doc in of_kind(docs, "NetworkPolicy").items()
    }


def peers(rule: Rule, direction: str) -> list[Any] | str:
    """The rule's peers: the components of this release it names, other peers as given."""
    if direction not in rule:
        return ANY
    found: list[Any] = []
    for peer in rule[direction]:
        selector = peer.get("podSelector", {})
        if selector.get("matchLabels") == {"app.kubernetes.io/instance": "rel"}:
            [names] = selector["matchExpressions"]
            assert names["key"] == "app.kubernetes.io/name" and names["operator"] == "In"
            found += names["values"]
        else:
            found.append(peer)
    return found


def reaching(spec: dict[str, Any], port: int, kind: str = "ingress") -> list[list[Any] | str]:
    """The peers of every rule of ``kind`` that covers ``port``."""
    direction = "from" if kind == "ingress" else "to"
    return [
        peers(rule, direction)
        for rule in spec.get(kind, [])
        if any(p["port"] == port for p in rule["ports"])
    ]


def egress_ports(spec: dict[str, Any]) -> set[int]:
    return {p["port"] for rule in spec["egress"] for p in rule["ports"]}


def test_every_component_has_a_policy_that_selects_its_pods(helm: Path) -> None:
    docs = render(helm, **{"database.existingSecret": "db"})
    found = policies(docs)
    assert set(found) == {*SERVICES, "tusd", "triton"}
    for name, deployment in of_kind(docs, "Deployment").items():
        spec = found[name.removeprefix("rel-slidestream-")]
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert spec["podSelector"]["matchLabels"].items() <= pod_labels.items()
        assert spec["policyTypes"] == ["Ingress", "Egress"]


def test_policies_are_a_value_that_can_be_turned_off(helm: Path) -> None:
    docs = render(helm, **{"networkPolicy.enabled": False})
    assert of_kind(docs, "NetworkPolicy") == {}


def test_only_tusd_reaches_the_hooks_port(helm: Path) -> None:
    upload = policies(render(helm))["upload"]
    assert reaching(upload, 8190) == [["tusd"]]
    tusd = policies(render(helm))["tusd"]
    assert reaching(tusd, 8190, "egress") == [["upload"]]


def test_without_tusd_nothing_reaches_the_hooks_port(helm: Path) -> None:
    upload = policies(render(helm, **{"tusd.enabled": False}))["upload"]
    assert reaching(upload, 8190) == []


def test_partners_reach_the_partner_facing_ports_and_scrapers_the_metrics(helm: Path) -> None:
    ingress_nginx = {"namespaceSelector": {"matchLabels": {"name": "ingress-nginx"}}}
    prometheus = {"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}
    docs = render(
        helm,
        **{
            "networkPolicy.partners.from": [ingress_nginx],
            "networkPolicy.monitoringFrom": [prometheus],
        },
    )
    found = policies(docs)
    assert sorted(map(str, reaching(found["upload"], 8090))) == sorted(
        map(str, [[prometheus], [ingress_nginx], ["catalog"]])
    )
    assert reaching(found["tusd"], 8080) == [[prometheus], [ingress_nginx], ["upload"]]
    assert reaching(found["catalog"], 8091) == [[prometheus], [ingress_nginx]]
    assert reaching(found["inference"], 8095) == [[prometheus], [ingress_nginx], ["catalog"]]
    for step, port in (("deid", 8092), ("convert", 8093), ("qc", 8094)):
        assert found[step]["ingress"] == [found[step]["ingress"][0]]
        assert reaching(found[step], port) == [[prometheus]]
    assert reaching(found["triton"], 8001) == [["inference"]]
    assert reaching(found["triton"], 8002) == [[prometheus]]


def test_the_pipeline_steps_reach_dns_kafka_s3_and_their_database_only(helm: Path) -> None:
    external = {"ipBlock": {"cidr": "10.20.0.0/16"}}
    docs = render(
        helm,
        **{
            "kafka.bootstrap": "kafka-0.data:9093,kafka-1.data:9094",
            "objectStore.endpoint": "https://s3.eu-west-1.amazonaws.com",
            "database.existingSecret": "db",
            "networkPolicy.externalTo": [external],
        },
    )
    for step in STEPS:
        spec = policies(docs)[step]
        assert egress_ports(spec) == {53, 9093, 9094, 443, 5432}
        assert reaching(spec, 53, "egress") == [ANY]  # the cluster's DNS, wherever it runs
        for port in (9093, 9094, 443, 5432):
            assert reaching(spec, port, "egress") == [[external]]


def test_each_service_reaches_the_services_and_servers_it_calls(helm: Path) -> None:
    docs = render(helm, **{"database.existingSecret": "db", "milvus.uri": "http://milvus.ai:19530"})
    found = policies(docs)
    assert reaching(found["upload"], 8080, "egress") == [["tusd"]]  # terminations
    assert reaching(found["catalog"], 8090, "egress") == [["upload"]]  # partner tokens
    assert reaching(found["catalog"], 8095, "egress") == [["inference"]]  # patch embeddings
    assert reaching(found["catalog"], 19530, "egress") == [ANY]  # Milvus outside the chart
    assert reaching(found["inference"], 8001, "egress") == [["triton"]]
    assert egress_ports(found["tusd"]) == {53, 9000, 8190}
    assert egress_ports(found["triton"]) == {53, 9000}
    for step in STEPS:
        assert not {8080, 8090, 8095, 8001, 19530} & egress_ports(found[step])


def test_the_in_chart_servers_admit_only_the_components_that_use_them(helm: Path) -> None:
    found = policies(render(helm, **IN_CHART))
    services = set(SERVICES)
    [kafka_clients] = reaching(found["kafka"], 9092)
    assert set(kafka_clients) == services | {"kafka", "kafka-topics"}  # and the topics Job
    [minio_clients] = reaching(found["minio"], 9000)
    assert set(minio_clients) == services | {"tusd", "triton"}
    assert [set(c) for c in reaching(found["postgres"], 5432)] == [services | {"postgres-roles"}]
    assert reaching(found["deid"], 9092, "egress") == [["kafka"]]
    assert reaching(found["deid"], 5432, "egress") == [["postgres"]]
    assert reaching(found["tusd"], 9000, "egress") == [["minio"]]


def test_keda_reads_consumer_lag_from_the_in_chart_kafka(helm: Path) -> None:
    keda = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "keda"}}}
    found = policies(render(helm, **IN_CHART, **{"keda.enabled": True}))
    assert [keda] in reaching(found["kafka"], 9092)


def test_the_values_schema_refuses_malformed_policy_values(helm: Path) -> None:
    for key, value in (
        ("networkPolicy.partners.components", ["deid"]),  # deid has no partner-facing API
        ("networkPolicy.monitoringFrom", [{"podSelectr": {}}]),
        ("services.upload.hooksPort", 80),
    ):
        args = ["template", "rel", str(CHART), "--set-json", f"{key}={json.dumps(value)}"]
        for required_key, required in REQUIRED.items():
            args += ["--set", f"{required_key}={required}"]
        done = run_helm(helm, *args)
        assert done.returncode != 0, key
        assert "values don't meet the specifications of the schema" in done.stderr
