"""State that must survive a pod: the chart refuses SQLite on an emptyDir (a database, or a
PersistentVolumeClaim per service for the embedded SQLite), gives each service its own database
URL, and never lets two tusd processes write one upload."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.charts import container, jobs, of_kind, refusal, render

SERVICES = ("catalog", "convert", "deid", "inference", "qc", "upload")
SQLITE = {"database.existingSecret": ""}
"""No PostgreSQL: the services' SQLite files."""


def volumes(deployment: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}


def database_source(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    """The projected Secrets that put a file at /run/secrets/slidestream/database_url."""
    sources = volumes(deployment)["secrets"]["projected"]["sources"]
    return [
        s["secret"]
        for s in sources
        if any(item["path"] == "database_url" for item in s["secret"]["items"])
    ]


def test_without_a_database_or_persistence_the_chart_refuses_to_render(helm: Path) -> None:
    said = refusal(helm, **SQLITE)
    assert "keeps state that must survive its pods" in said
    for way_out in ("database.existingSecret", "inChart.postgres.enabled=true"):
        assert way_out in said
    assert "persistence.enabled=true" in said


def test_the_embedded_sqlite_lives_on_a_claim_per_service(helm: Path) -> None:
    docs = render(
        helm,
        **SQLITE,
        **{
            "persistence.enabled": True,
            "persistence.storageClass": "fast",
            "services.catalog.persistence": {"size": "40Gi"},
        },
    )
    deployments = of_kind(docs, "Deployment")
    claims = of_kind(docs, "PersistentVolumeClaim")
    assert set(claims) == {f"rel-slidestream-{name}-data" for name in SERVICES}
    for name in SERVICES:
        deployment = deployments[f"rel-slidestream-{name}"]
        data = volumes(deployment)["data"]
        assert data == {
            "name": "data",
            "persistentVolumeClaim": {"claimName": f"rel-slidestream-{name}-data"},
        }
        mounts = {m["name"]: m["mountPath"] for m in container(deployment)["volumeMounts"]}
        assert mounts["data"] == "/var/lib/slidestream"  # DATA_DIR: <service>.db
        assert database_source(deployment) == []
        claim = claims[f"rel-slidestream-{name}-data"]
        assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
        assert claim["spec"]["storageClassName"] == "fast"
        size = claim["spec"]["resources"]["requests"]["storage"]
        assert size == ("40Gi" if name == "catalog" else "5Gi")


def test_keda_is_refused_for_services_on_sqlite(helm: Path) -> None:
    said = refusal(helm, **SQLITE, **{"persistence.enabled": True, "keda.enabled": True})
    assert "keda.enabled" in said and "one writer" in said


def test_with_postgresql_no_service_gets_a_claim(helm: Path) -> None:
    docs = render(helm, **{"persistence.enabled": True})
    assert of_kind(docs, "PersistentVolumeClaim") == {}
    deployments = of_kind(docs, "Deployment")
    for name in SERVICES:
        data = volumes(deployments[f"rel-slidestream-{name}"])["data"]
        assert data == {"name": "data", "emptyDir": {}}


def test_each_service_reads_its_own_key_of_the_database_secret(helm: Path) -> None:
    deployments = of_kind(render(helm, **{"database.existingSecret": "ops-db"}), "Deployment")
    for name in SERVICES:
        [source] = database_source(deployments[f"rel-slidestream-{name}"])
        assert source == {
            "name": "ops-db",
            "items": [{"key": f"database_url_{name}", "path": "database_url"}],
        }


def test_the_in_chart_postgresql_gives_each_service_its_own_role_and_secret(helm: Path) -> None:
    docs = render(helm, **SQLITE, **{"inChart.postgres.enabled": True})
    deployments = of_kind(docs, "Deployment")
    secrets = of_kind(docs, "Secret")
    for name in SERVICES:
        [source] = database_source(deployments[f"rel-slidestream-{name}"])
        assert source == {
            "name": f"rel-slidestream-postgres-{name}",
            "items": [{"key": "database_url", "path": "database_url"}],
        }
        secret = secrets[f"rel-slidestream-postgres-{name}"]
        password = secret["stringData"]["password"]
        assert secret["stringData"]["database_url"] == (
            f"postgresql+psycopg://slidestream_{name}:{password}"
            "@rel-slidestream-postgres:5432/slidestream"
        )
        assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    passwords = {
        secrets[f"rel-slidestream-postgres-{n}"]["stringData"]["password"] for n in SERVICES
    }
    assert len(passwords) == len(SERVICES)


def test_the_roles_job_grants_each_role_its_own_schema_only(helm: Path) -> None:
    docs = render(
        helm, **SQLITE, **{"inChart.postgres.enabled": True, "services.qc.enabled": False}
    )
    sql = of_kind(docs, "ConfigMap")["rel-slidestream-postgres-roles"]["data"]["roles.sql"]
    assert 'REVOKE ALL ON DATABASE :"DBNAME" FROM PUBLIC;' in sql
    assert "REVOKE ALL ON SCHEMA public FROM PUBLIC;" in sql
    for name in ("catalog", "convert", "deid", "inference", "upload"):
        role = f'"slidestream_{name}"'
        assert f'CREATE SCHEMA IF NOT EXISTS "{name}" AUTHORIZATION {role};' in sql
        assert f'REVOKE ALL ON SCHEMA "{name}" FROM PUBLIC;' in sql
        assert f'GRANT USAGE, CREATE ON SCHEMA "{name}" TO {role};' in sql
        assert f"PASSWORD :'{name}_password';" in sql
    assert "slidestream_qc" not in sql  # a disabled service has no role
    [job] = jobs(docs, "rel-slidestream-postgres-roles-")
    env = {e["name"]: e for e in container(job)["env"]}
    assert env["PGPASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "rel-slidestream-postgres-url",
        "key": "password",
    }
    assert env["PASSWORD_DEID"]["valueFrom"]["secretKeyRef"] == {
        "name": "rel-slidestream-postgres-deid",
        "key": "password",
    }
    assert "PASSWORD_QC" not in env


def test_with_a_database_of_your_own_the_chart_makes_no_roles(helm: Path) -> None:
    docs = render(helm, **{"inChart.postgres.enabled": True})  # database.existingSecret wins
    assert jobs(docs, "rel-slidestream-postgres-roles-") == []
    assert not set(of_kind(docs, "Secret")) & {f"rel-slidestream-postgres-{n}" for n in SERVICES}


def test_one_tusd_process_writes_every_upload(helm: Path) -> None:
    tusd = of_kind(render(helm), "Deployment")["rel-slidestream-tusd"]["spec"]
    assert tusd["replicas"] == 1
    assert tusd["strategy"] == {"type": "Recreate"}  # not even two during a rollout
    assert (
        of_kind(render(helm, **{"tusd.replicas": 0}), "Deployment")["rel-slidestream-tusd"]["spec"][
            "replicas"
        ]
        == 0
    )


@pytest.mark.parametrize("replicas", [2, 5])
def test_the_chart_refuses_tusd_replicas_that_could_write_one_upload_twice(
    helm: Path, replicas: int
) -> None:
    said = refusal(helm, **{"tusd.replicas": replicas})
    assert f"tusd.replicas is {replicas}" in said
    assert "two replicas could write the same upload" in said
