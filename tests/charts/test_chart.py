"""charts/slidestream rendered by the real Helm: lint, what each service gets, independent
scaling, KEDA on consumer lag, the values schema refusing bad values, the in-chart servers, and
the environment every Deployment sets being one its service's settings class accepts."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from slidestream_catalog.settings import CatalogSettings
from slidestream_convert.settings import ConvertSettings
from slidestream_deid.settings import DeidSettings
from slidestream_devstack.paths import find_repo_root
from slidestream_devstack.tools import ensure_helm
from slidestream_platform.settings import ServiceSettings
from slidestream_qc.settings import QcSettings
from slidestream_upload.settings import UploadSettings

CHART = find_repo_root(None) / "charts" / "slidestream"
SERVICES = ("catalog", "convert", "deid", "qc", "upload")
CONSUMERS = {"catalog", "convert", "deid", "qc"}
KUBE_VERSION = "1.31.0"
"""Helm built from source assumes Kubernetes 1.20 for `template`; the chart needs >= 1.27."""
REQUIRED = {"kafka.bootstrap": "kafka.data:9092", "objectStore.endpoint": "http://minio.data:9000"}
SETTINGS: dict[str, type[ServiceSettings]] = {
    "catalog": CatalogSettings,
    "convert": ConvertSettings,
    "deid": DeidSettings,
    "qc": QcSettings,
    "upload": UploadSettings,
}


@pytest.fixture(scope="module")
def helm() -> Path:
    return ensure_helm()


def run_helm(helm: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(helm), *args], capture_output=True, text=True, check=False, timeout=120
    )


def render(helm: Path, **values: object) -> list[dict[str, Any]]:
    merged = {**REQUIRED, **values}
    args = ["template", "rel", str(CHART), "--kube-version", KUBE_VERSION]
    for key, value in merged.items():
        args += ["--set-json", f"{key}={json.dumps(value)}"]
    done = run_helm(helm, *args)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def of_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    [only] = deployment["spec"]["template"]["spec"]["containers"]
    return dict(only)


def env_of(deployment: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container(deployment)["env"] if "value" in e}


def test_the_chart_lints_clean(helm: Path) -> None:
    args = ["lint", str(CHART), "--strict"]
    for key, value in REQUIRED.items():
        args += ["--set", f"{key}={value}"]
    done = run_helm(helm, *args)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 chart(s) failed" in done.stdout


def test_every_service_is_a_deployment_with_probes_metrics_and_secrets(helm: Path) -> None:
    docs = render(helm, **{"database.existingSecret": "slidestream-db"})
    deployments = of_kind(docs, "Deployment")
    services = of_kind(docs, "Service")
    for name in SERVICES:
        deployment = deployments[f"rel-slidestream-{name}"]
        main = container(deployment)
        assert main["image"] == f"ghcr.io/slidestream/{name}:0.1.0"
        assert main["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert main["livenessProbe"]["httpGet"]["path"] == "/healthz"
        env = env_of(deployment)
        assert env["SERVICE_NAME"] == name
        assert env["KAFKA_BOOTSTRAP"] == "kafka.data:9092"
        assert env["S3_ENDPOINT"] == "http://minio.data:9000"
        mounts = {m["mountPath"] for m in main["volumeMounts"]}
        assert "/run/secrets/slidestream" in mounts
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/path"] == "/metrics"
        secrets = deployment["spec"]["template"]["spec"]["volumes"][0]["projected"]["sources"]
        assert {s["secret"]["name"] for s in secrets} == {"slidestream-s3", "slidestream-db"}
        assert services[f"rel-slidestream-{name}"]["spec"]["ports"][0]["port"] == int(
            env["HTTP_PORT"]
        )
        key_mounted = "/run/secrets/slidestream-pseudonym" in mounts
        assert key_mounted == (name == "deid")  # only deid may read the pseudonym key
    assert {"rel-slidestream-tusd", "rel-slidestream-triton"} <= set(deployments)


def test_each_service_scales_on_its_own(helm: Path) -> None:
    docs = render(helm, **{"database.existingSecret": "db", "services.convert.replicas": 7})
    replicas = {
        name.removeprefix("rel-slidestream-"): d["spec"]["replicas"]
        for name, d in of_kind(docs, "Deployment").items()
    }
    assert replicas["convert"] == 7
    assert all(replicas[name] == 2 for name in SERVICES if name != "convert")


def test_a_disabled_service_is_not_rendered(helm: Path) -> None:
    docs = render(helm, **{"services.qc.enabled": False, "triton.enabled": False})
    names = set(of_kind(docs, "Deployment"))
    assert "rel-slidestream-qc" not in names and "rel-slidestream-triton" not in names
    assert "rel-slidestream-convert" in names


def test_keda_scales_consumers_on_their_groups_lag_capped_by_partitions(helm: Path) -> None:
    docs = render(
        helm,
        **{
            "database.existingSecret": "db",
            "keda.enabled": True,
            "keda.maxReplicas": 50,
            "kafka.partitions": 12,
        },
    )
    scaled = of_kind(docs, "ScaledObject")
    assert set(scaled) == {f"rel-slidestream-{name}" for name in CONSUMERS}
    convert = scaled["rel-slidestream-convert"]["spec"]
    assert convert["maxReplicaCount"] == 12
    [trigger] = convert["triggers"]
    assert trigger["type"] == "kafka"
    assert trigger["metadata"]["consumerGroup"] == "convert"
    assert trigger["metadata"]["topic"] == "slides.deidentified.v1"
    deployments = of_kind(docs, "Deployment")
    assert "replicas" not in deployments["rel-slidestream-convert"]["spec"]  # KEDA owns it
    assert deployments["rel-slidestream-upload"]["spec"]["replicas"] == 2  # not a consumer


def test_without_a_database_every_service_runs_one_replica_on_sqlite(helm: Path) -> None:
    docs = render(helm)
    for name, deployment in of_kind(docs, "Deployment").items():
        if name.removeprefix("rel-slidestream-") in SERVICES:
            assert deployment["spec"]["replicas"] == 1
            assert deployment["spec"]["strategy"] == {"type": "Recreate"}


def test_in_chart_servers_are_used_when_enabled(helm: Path) -> None:
    done = run_helm(
        helm,
        "template",
        "rel",
        str(CHART),
        "--kube-version",
        KUBE_VERSION,
        "--set",
        "inChart.kafka.enabled=true,inChart.minio.enabled=true,inChart.postgres.enabled=true",
    )
    assert done.returncode == 0, done.stderr
    docs = [d for d in yaml.safe_load_all(done.stdout) if d]
    assert set(of_kind(docs, "StatefulSet")) == {
        "rel-slidestream-kafka",
        "rel-slidestream-minio",
        "rel-slidestream-postgres",
    }
    env = env_of(of_kind(docs, "Deployment")["rel-slidestream-deid"])
    assert env["KAFKA_BOOTSTRAP"] == "rel-slidestream-kafka:9092"
    assert env["S3_ENDPOINT"] == "http://rel-slidestream-minio:9000"
    secret = of_kind(docs, "Secret")["rel-slidestream-postgres-url"]
    assert secret["stringData"]["database_url"].startswith("postgresql+psycopg://slidestream:")


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (
            "objectStore.endpoint=http://s3:9000",
            "set kafka.bootstrap, or inChart.kafka.enabled=true",
        ),
        ("kafka.bootstrap=kafka:9092", "set objectStore.endpoint, or inChart.minio.enabled=true"),
    ],
)
def test_a_missing_server_fails_with_a_message_that_says_what_to_set(
    helm: Path, given: str, message: str
) -> None:
    done = run_helm(
        helm, "template", "rel", str(CHART), "--kube-version", KUBE_VERSION, "--set", given
    )
    assert done.returncode != 0
    assert message in done.stderr


@pytest.mark.parametrize(
    ("key", "value", "complaint"),
    [
        ("services.convert.replicas", "two", "replicas"),
        ("services.convert.colour", "blue", "colour"),
        ("triton.modelRepository", "/models", "modelRepository"),
        ("services.deid.scratch.sizeLimit", "20GB", "sizeLimit"),
        ("image.pullPolicy", "Sometimes", "pullPolicy"),
    ],
)
def test_the_values_schema_refuses_bad_values(
    helm: Path, key: str, value: object, complaint: str
) -> None:
    args = [
        "template",
        "rel",
        str(CHART),
        "--kube-version",
        KUBE_VERSION,
        "--set-json",
        f"{key}={json.dumps(value)}",
    ]
    for required_key, required in REQUIRED.items():
        args += ["--set", f"{required_key}={required}"]
    done = run_helm(helm, *args)
    assert done.returncode != 0
    assert "values don't meet the specifications of the schema" in done.stderr
    assert complaint in done.stderr


def test_the_environment_of_each_deployment_is_accepted_by_its_settings_class(
    helm: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = render(helm, **{"database.existingSecret": "db", "otel.endpoint": "http://otel:4318"})
    deployments = of_kind(docs, "Deployment")
    for name, settings_class in SETTINGS.items():
        with monkeypatch.context() as patch:
            for key, value in env_of(deployments[f"rel-slidestream-{name}"]).items():
                patch.setenv(key, value)
            if name == "upload":
                patch.setenv("TUS_URL", "https://upload.example.org/files/")
            settings = settings_class()
        assert settings.service_name == name
        assert settings.http_port == int(
            env_of(deployments[f"rel-slidestream-{name}"])["HTTP_PORT"]
        )
        assert settings.kafka_bootstrap == "kafka.data:9092"
        assert settings.otel_exporter_otlp_endpoint == "http://otel:4318"
