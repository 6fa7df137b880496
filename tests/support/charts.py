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
REQUIRED = {"kafka.bootstrap": "kafka.data:9092", "objectStore.endpoint": "http://minio.data:9000"}


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
