"""charts/slidestream rendered by the real Helm: lint, what each service gets, independent
scaling, KEDA on consumer lag, Triton on the models bucket with the GPU option, the values schema
refusing bad values, the in-chart servers, and the environment every Deployment sets being one
its service's settings class accepts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from slidestream_catalog.settings import CatalogSettings
from slidestream_convert.settings import ConvertSettings
from slidestream_deid.settings import DeidSettings
from slidestream_inference.settings import InferenceSettings
from slidestream_platform.settings import ServiceSettings
from slidestream_qc.settings import QcSettings
from slidestream_upload.settings import UploadSettings
from tests.support.charts import (
    CHART,
    KUBE_VERSION,
    REQUIRED,
    container,
    env_of,
    of_kind,
    render,
    run_helm,
)

SERVICES = ("catalog", "convert", "deid", "inference", "qc", "upload")
CONSUMERS = {"catalog", "convert", "deid", "inference", "qc"}
SETTINGS: dict[str, type[ServiceSettings]] = {
    "catalog": CatalogSettings,
    "convert": ConvertSettings,
    "deid": DeidSettings,
    "inference": InferenceSettings,
    "qc": QcSettings,
    "upload": UploadSettings,
}


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
        expected = {"slidestream-s3", "slidestream-db"}
        if name == "upload":  # the tusd hooks secret is upload's alone
            expected.add("rel-slidestream-tusd-hooks")
        assert {s["secret"]["name"] for s in secrets} == expected
        [database] = [s["secret"] for s in secrets if s["secret"]["name"] == "slidestream-db"]
        # Its own URL (its own role) only, where the settings base reads DATABASE_URL.
        assert database["items"] == [{"key": f"database_url_{name}", "path": "database_url"}]
        assert services[f"rel-slidestream-{name}"]["spec"]["ports"][0]["port"] == int(
            env["HTTP_PORT"]
        )
        key_mounted = "/run/secrets/slidestream-pseudonym" in mounts
        assert key_mounted == (name == "deid")  # only deid may read the pseudonym key
        vault_mounted = "/run/secrets/slidestream-vault" in mounts
        assert vault_mounted == (name == "deid")  # nor the vault key
        tokens_mounted = "/run/secrets/slidestream-api-tokens" in mounts
        assert tokens_mounted == (name == "inference")  # the models API's token hashes
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


def test_keda_scales_inference_on_qc_verdicts_and_backfill_requests(helm: Path) -> None:
    docs = render(helm, **{"database.existingSecret": "db", "keda.enabled": True})
    inference = of_kind(docs, "ScaledObject")["rel-slidestream-inference"]["spec"]
    assert inference["scaleTargetRef"]["name"] == "rel-slidestream-inference"
    triggers = {t["metadata"]["topic"]: t["metadata"] for t in inference["triggers"]}
    assert {"slides.qc.v1", "inference.requests.v1"} <= set(triggers)
    assert {t["consumerGroup"] for t in triggers.values()} == {"inference"}
    assert "replicas" not in of_kind(docs, "Deployment")["rel-slidestream-inference"]["spec"]


def test_inference_talks_to_the_charts_triton_and_reads_token_hashes_from_a_secret(
    helm: Path,
) -> None:
    docs = render(helm, **{"database.existingSecret": "db"})
    deployment = of_kind(docs, "Deployment")["rel-slidestream-inference"]
    env = env_of(deployment)
    assert env["TRITON_GRPC"] == "rel-slidestream-triton:8001"
    assert env["TRITON_HTTP"] == "http://rel-slidestream-triton:8000"
    assert env["TRITON_GPUS"] == "0"
    assert env["MODELS_BUCKET"] == "models"
    assert env["MAX_REQUESTS_IN_FLIGHT"] == "4"
    tokens_file = Path(env["API_TOKENS_FILE"])
    mounts = {m["name"]: m["mountPath"] for m in container(deployment)["volumeMounts"]}
    assert Path(mounts["api-tokens"]) == tokens_file.parent
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    secret = volumes["api-tokens"]["secret"]
    assert secret["secretName"] == "slidestream-models-api-tokens"
    assert secret["items"] == [{"key": tokens_file.name, "path": tokens_file.name}]
    triton_ports = of_kind(docs, "Service")["rel-slidestream-triton"]["spec"]["ports"]
    assert {p["name"]: p["port"] for p in triton_ports} == {
        "http": 8000,
        "grpc": 8001,
        "metrics": 8002,
    }


def test_the_catalog_reaches_the_inference_api_with_an_embed_token_from_a_secret(
    helm: Path,
) -> None:
    deployments = of_kind(render(helm), "Deployment")
    catalog = deployments["rel-slidestream-catalog"]
    env = env_of(catalog)
    assert env["INFERENCE_API_URL"] == "http://rel-slidestream-inference:8095"
    token_file = Path(env["EMBED_TOKEN_FILE"])
    mounts = {m["name"]: m["mountPath"] for m in container(catalog)["volumeMounts"]}
    assert Path(mounts["embed-token"]) == token_file.parent
    volumes = {v["name"]: v for v in catalog["spec"]["template"]["spec"]["volumes"]}
    secret = volumes["embed-token"]["secret"]
    assert secret["secretName"] == "slidestream-catalog-embed-token"
    assert secret["items"] == [{"key": token_file.name, "path": token_file.name}]
    # No other service holds the embed token.
    others = [name for name, d in deployments.items() if "EMBED_TOKEN_FILE" in env_of(d)]
    assert others == ["rel-slidestream-catalog"]
    without_inference = of_kind(render(helm, **{"services.inference.enabled": False}), "Deployment")
    assert "INFERENCE_API_URL" not in env_of(without_inference["rel-slidestream-catalog"])


def test_deid_reads_its_vault_keys_from_their_own_secret_current_and_retired(
    helm: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deid = of_kind(render(helm), "Deployment")["rel-slidestream-deid"]
    env = env_of(deid)
    assert env["VAULT_KEY_FILE"] == "/run/secrets/slidestream-vault/vault_key_1"
    assert env["VAULT_KEY_ID"] == "1" and "VAULT_RETIRED_KEY_FILES" not in env
    volumes = {v["name"]: v for v in deid["spec"]["template"]["spec"]["volumes"]}
    secret = volumes["vault-key"]["secret"]
    assert secret["secretName"] == "slidestream-vault-key"
    assert secret["secretName"] != volumes["pseudonym-key"]["secret"]["secretName"]
    assert secret["items"] == [{"key": "vault_key_1", "path": "vault_key_1"}]

    rotated = of_kind(
        render(
            helm, **{"services.deid.vaultKey.id": 3, "services.deid.vaultKey.retiredIds": [1, 2]}
        ),
        "Deployment",
    )["rel-slidestream-deid"]
    env = env_of(rotated)
    assert env["VAULT_KEY_FILE"] == "/run/secrets/slidestream-vault/vault_key_3"
    volumes = {v["name"]: v for v in rotated["spec"]["template"]["spec"]["volumes"]}
    assert [item["key"] for item in volumes["vault-key"]["secret"]["items"]] == [
        "vault_key_3",
        "vault_key_1",
        "vault_key_2",
    ]
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = DeidSettings()
    assert settings.vault_key_id == 3
    assert settings.vault_retired_key_files == {
        1: Path("/run/secrets/slidestream-vault/vault_key_1"),
        2: Path("/run/secrets/slidestream-vault/vault_key_2"),
    }


def test_triton_reads_the_models_bucket_itself_with_explicit_model_control(helm: Path) -> None:
    triton = of_kind(render(helm), "Deployment")["rel-slidestream-triton"]
    main = container(triton)
    assert main["image"] == "nvcr.io/nvidia/tritonserver:24.10-py3"
    assert main["args"][0] == "tritonserver"
    assert "--model-repository=s3://http://minio.data:9000/models" in main["args"]
    assert "--model-control-mode=explicit" in main["args"]
    # A pod stays reachable when one of its models fails: the inference service repairs it.
    assert "--strict-readiness=false" in main["args"]
    assert "--allow-gpu-metrics=false" in main["args"]
    secret_env = {
        e["name"]: e["valueFrom"]["secretKeyRef"] for e in main["env"] if "valueFrom" in e
    }
    assert secret_env == {
        "AWS_ACCESS_KEY_ID": {"name": "slidestream-s3", "key": "s3_access_key"},
        "AWS_SECRET_ACCESS_KEY": {"name": "slidestream-s3", "key": "s3_secret_key"},
    }
    assert env_of(triton)["AWS_DEFAULT_REGION"] == "us-east-1"
    assert main["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert "nvidia.com/gpu" not in main["resources"]["limits"]
    assert triton["spec"]["replicas"] == 1
    assert "HorizontalPodAutoscaler" not in {doc["kind"] for doc in render(helm)}


@pytest.mark.parametrize(
    ("endpoint", "bucket", "repository"),
    [
        (
            "https://s3.eu-west-1.amazonaws.com",
            "models",
            "s3://https://s3.eu-west-1.amazonaws.com:443/models",
        ),
        ("http://minio.data", "team-models", "s3://http://minio.data:80/team-models"),
    ],
)
def test_tritons_repository_always_names_the_port_its_s3_form_requires(
    helm: Path, endpoint: str, bucket: str, repository: str
) -> None:
    docs = render(helm, **{"objectStore.endpoint": endpoint, "triton.modelsBucket": bucket})
    args = container(of_kind(docs, "Deployment")["rel-slidestream-triton"])["args"]
    assert f"--model-repository={repository}" in args
    assert env_of(of_kind(docs, "Deployment")["rel-slidestream-inference"])["MODELS_BUCKET"] == (
        bucket
    )


def test_gpus_go_to_triton_as_a_resource_limit_and_to_inference_as_its_instance_kind(
    helm: Path,
) -> None:
    toleration = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    docs = render(
        helm,
        **{
            "triton.gpus": 2,
            "triton.nodeSelector": {"nvidia.com/gpu.present": "true"},
            "triton.tolerations": [toleration],
        },
    )
    deployments = of_kind(docs, "Deployment")
    triton = deployments["rel-slidestream-triton"]
    main = container(triton)
    assert main["resources"]["limits"]["nvidia.com/gpu"] == 2
    assert "--allow-gpu-metrics=false" not in main["args"]
    pod = triton["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert pod["tolerations"] == [toleration]
    assert env_of(deployments["rel-slidestream-inference"])["TRITON_GPUS"] == "2"
    # The services stay off the GPU nodes.
    assert "tolerations" not in deployments["rel-slidestream-inference"]["spec"]["template"]["spec"]


def test_every_triton_replica_is_found_through_a_headless_service(helm: Path) -> None:
    docs = render(helm, **{"triton.replicas": 3})
    triton = of_kind(docs, "Deployment")["rel-slidestream-triton"]
    headless = of_kind(docs, "Service")["rel-slidestream-triton-replicas"]["spec"]

    assert triton["spec"]["replicas"] == 3
    assert headless["clusterIP"] == "None"  # DNS answers each pod's address, no load balancing
    assert headless["publishNotReadyAddresses"] is False  # a starting Triton cannot load yet
    pod_labels = triton["spec"]["template"]["metadata"]["labels"]
    assert headless["selector"].items() <= pod_labels.items()
    assert headless["ports"] == [{"name": "grpc", "port": 8001, "targetPort": "grpc"}]
    env = env_of(of_kind(docs, "Deployment")["rel-slidestream-inference"])
    assert env["TRITON_REPLICAS_DNS"] == "rel-slidestream-triton-replicas"
    assert env["TRITON_GRPC"].endswith(":8001")  # the replicas' port comes from here


def test_without_the_charts_triton_there_is_no_replica_service_of_its_own(helm: Path) -> None:
    docs = render(helm, **{"triton.enabled": False})
    assert "rel-slidestream-triton-replicas" not in of_kind(docs, "Service")
    env = env_of(of_kind(docs, "Deployment")["rel-slidestream-inference"])
    assert "TRITON_REPLICAS_DNS" not in env


def test_triton_autoscaling_hands_replicas_to_a_cpu_autoscaler(helm: Path) -> None:
    docs = render(helm, **{"triton.autoscaling.enabled": True, "triton.autoscaling.maxReplicas": 3})
    assert "replicas" not in of_kind(docs, "Deployment")["rel-slidestream-triton"]["spec"]
    hpa = of_kind(docs, "HorizontalPodAutoscaler")["rel-slidestream-triton"]["spec"]
    assert hpa["scaleTargetRef"]["name"] == "rel-slidestream-triton"
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (1, 3)
    assert hpa["metrics"][0]["resource"]["name"] == "cpu"


def test_without_the_charts_triton_inference_uses_the_one_it_is_given(helm: Path) -> None:
    docs = render(
        helm,
        **{
            "triton.enabled": False,
            "services.inference.env.TRITON_GRPC": "triton.gpu:8001",
            "services.inference.env.TRITON_HTTP": "http://triton.gpu:8000",
        },
    )
    env = container(of_kind(docs, "Deployment")["rel-slidestream-inference"])["env"]
    grpc = [e["value"] for e in env if e["name"] == "TRITON_GRPC"]
    assert grpc == ["triton.gpu:8001"]  # once: the chart adds none of its own


def test_without_a_database_every_service_runs_one_replica_on_its_claim(helm: Path) -> None:
    docs = render(helm, **{"database.existingSecret": "", "persistence.enabled": True})
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
        "--set",  # one broker
        "kafka.topics.replicationFactor=1,kafka.topics.minInsyncReplicas=1",
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
    # The superuser's password is the roles Job's; each service has a URL of its own role.
    assert set(of_kind(docs, "Secret")["rel-slidestream-postgres-url"]["stringData"]) == {
        "password"
    }
    secret = of_kind(docs, "Secret")["rel-slidestream-postgres-deid"]
    assert secret["stringData"]["database_url"].startswith("postgresql+psycopg://slidestream_deid:")


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
        helm,
        "template",
        "rel",
        str(CHART),
        "--kube-version",
        KUBE_VERSION,
        "--set",
        f"{given},database.existingSecret=db",
    )
    assert done.returncode != 0
    assert message in done.stderr


@pytest.mark.parametrize(
    ("key", "value", "complaint"),
    [
        ("services.convert.replicas", "two", "replicas"),
        ("services.convert.colour", "blue", "colour"),
        ("triton.modelsBucket", "Models_1", "modelsBucket"),
        ("triton.gpus", -1, "gpus"),
        ("services.deid.scratch.sizeLimit", "20GB", "sizeLimit"),
        ("image.pullPolicy", "Sometimes", "pullPolicy"),
        ("services.deid.vaultKey.id", 0, "id"),
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
