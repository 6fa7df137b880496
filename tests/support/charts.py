"""Support for the chart tests: charts/slidestream rendered by the pinned Helm (built from
source), offline, and the pieces of a rendered manifest the tests read."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml

from slidestream_devstack.paths import find_repo_root
from slidestream_devstack.tools import chart_for_offline_render

SOURCE_CHART = find_repo_root(None) / "charts" / "slidestream"
CHART, UNRENDERED_DEPENDENCIES = chart_for_offline_render(
    SOURCE_CHART, Path(tempfile.mkdtemp(prefix="chart-"))
)
"""Without the optional Milvus chart's archive (no network here), its dependency entry is left
out of a copy; our own templates render the same either way."""
KUBE_VERSION = "1.31.0"
"""Helm built from source assumes Kubernetes 1.20 for `template`; the chart needs >= 1.27."""
REQUIRED = {
    "kafka.bootstrap": "kafka.data:9092",
    "objectStore.endpoint": "http://minio.data:9000",
    "database.existingSecret": "slidestream-db",
}
"""What every render needs: the servers, and a database (the chart refuses SQLite on an emptyDir).
A test that wants none sets ``database.existingSecret`` to ""."""


def run_helm(helm: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(helm), *args], capture_output=True, text=True, check=False, timeout=120
    )


def template(helm: Path, **values: object) -> subprocess.CompletedProcess[str]:
    """``helm template`` with :data:`REQUIRED` and ``values`` (dotted keys, JSON values)."""
    merged = {**REQUIRED, **values}
    args = ["template", "rel", str(CHART), "--kube-version", KUBE_VERSION]
    for key, value in merged.items():
        args += ["--set-json", f"{key}={json.dumps(value)}"]
    return run_helm(helm, *args)


def render(helm: Path, **values: object) -> list[dict[str, Any]]:
    done = template(helm, **values)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def refusal(helm: Path, **values: object) -> str:
    """What Helm says when the chart refuses to render with ``values`` (it must refuse)."""
    done = template(helm, **values)
    assert done.returncode != 0, "the chart rendered"
    return done.stderr


def of_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def jobs(docs: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    """The Jobs whose name starts with ``prefix`` (a Job's name ends with its content's hash)."""
    return [job for name, job in of_kind(docs, "Job").items() if name.startswith(prefix)]


def container(workload: dict[str, Any]) -> dict[str, Any]:
    """The only container of a Deployment's or a Job's pods."""
    [only] = workload["spec"]["template"]["spec"]["containers"]
    return dict(only)


def env_of(deployment: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container(deployment)["env"] if "value" in e}
