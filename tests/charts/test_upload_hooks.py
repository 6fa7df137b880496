"""tusd's hooks in the chart: the upload service serves them on a port of its own, tusd calls
that port with the hooks secret, and one Secret gives every upload replica and tusd the same
secret (and the same internal token)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from slidestream_upload.settings import UploadSettings
from tests.support.charts import container, env_of, of_kind, render

HOOKS_SECRET = "rel-slidestream-tusd-hooks"


def projected_items(deployment: dict[str, Any]) -> dict[str, str]:
    """Secret key → path under /run/secrets/slidestream, for the hooks Secret."""
    [volume] = [
        v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == "secrets"
    ]
    sources = volume["projected"]["sources"]
    [hooks] = [s["secret"] for s in sources if s["secret"]["name"] == HOOKS_SECRET]
    return {item["key"]: item["path"] for item in hooks["items"]}


def test_the_upload_service_serves_the_hooks_on_their_own_port_with_the_shared_secret(
    helm: Path,
) -> None:
    docs = render(helm)
    upload = of_kind(docs, "Deployment")["rel-slidestream-upload"]
    env = env_of(upload)
    ports = {p["name"]: p["containerPort"] for p in container(upload)["ports"]}
    assert ports == {"http": 8090, "hooks": 8190}
    assert (env["HTTP_PORT"], env["HOOKS_PORT"]) == ("8090", "8190")
    secret_file = Path(env["TUSD_HOOKS_SECRET_FILE"])
    assert secret_file.parent == Path("/run/secrets/slidestream")
    assert projected_items(upload) == {
        secret_file.name: secret_file.name,
        "tusd_internal_token": "tusd_internal_token",  # read by the settings base by name
    }
    service = of_kind(docs, "Service")["rel-slidestream-upload"]["spec"]["ports"]
    assert {p["name"]: p["port"] for p in service} == {"http": 8090, "hooks": 8190}
    assert env["TUSD_INTERNAL_URL"] == "http://rel-slidestream-tusd:8080/files/"
    # Partner tokens are resolved by the upload API, in the cluster.
    catalog = env_of(of_kind(docs, "Deployment")["rel-slidestream-catalog"])
    assert catalog["UPLOAD_API_URL"] == "http://rel-slidestream-upload:8090"


def test_tusd_calls_the_hooks_port_with_the_secret_and_forwards_no_header(helm: Path) -> None:
    tusd = container(of_kind(render(helm), "Deployment")["rel-slidestream-tusd"])
    [hooks_url] = [
        a.removeprefix("-hooks-http=") for a in tusd["args"] if a.startswith("-hooks-http=")
    ]
    assert hooks_url == "http://tusd:$(TUSD_HOOKS_SECRET)@rel-slidestream-upload:8190/hooks/tusd"
    secret_env = {
        e["name"]: e["valueFrom"]["secretKeyRef"] for e in tusd["env"] if "valueFrom" in e
    }
    assert secret_env["TUSD_HOOKS_SECRET"] == {"name": HOOKS_SECRET, "key": "tusd_hooks_secret"}
    assert "-show-startup-logs=false" in tusd["args"]  # tusd would print the hook URL
    assert not any(a.startswith("-hooks-http-forward-headers") for a in tusd["args"])


def test_the_chart_makes_one_secret_for_every_replica_unless_given_one(
    helm: Path, tmp_path: Path
) -> None:
    [secret] = [d for d in render(helm) if d["kind"] == "Secret"]
    assert secret["metadata"]["name"] == HOOKS_SECRET
    values = secret["stringData"]
    assert set(values) == {"tusd_hooks_secret", "tusd_internal_token"}
    # Letters and digits only: the secret travels as the password of tusd's hook URL.
    assert all(re.fullmatch(r"[A-Za-z0-9]{48}", value) for value in values.values())
    assert values["tusd_hooks_secret"] != values["tusd_internal_token"]
    mounted = tmp_path / "tusd_hooks_secret"
    mounted.write_text(values["tusd_hooks_secret"])
    read = UploadSettings(tusd_hooks_secret_file=mounted).tusd_hooks_secret()
    assert read.get_secret_value() == values["tusd_hooks_secret"].encode()

    docs = render(helm, **{"services.upload.tusdHooks.existingSecret": "ops-tusd-hooks"})
    assert [d for d in docs if d["kind"] == "Secret"] == []
    deployments = of_kind(docs, "Deployment")
    tusd_env = container(deployments["rel-slidestream-tusd"])["env"]
    [ref] = [
        e["valueFrom"]["secretKeyRef"]["name"] for e in tusd_env if e["name"] == "TUSD_HOOKS_SECRET"
    ]
    assert ref == "ops-tusd-hooks"
    sources = deployments["rel-slidestream-upload"]["spec"]["template"]["spec"]["volumes"][0]
    names = {s["secret"]["name"] for s in sources["projected"]["sources"]}
    assert "ops-tusd-hooks" in names and HOOKS_SECRET not in names


def test_tusd_serves_no_download_of_an_upload(helm: Path) -> None:
    tusd = container(of_kind(render(helm), "Deployment")["rel-slidestream-tusd"])
    # No hook guards tusd's GET: it would hand the original (PHI and all) to anyone with its URL.
    assert "-disable-download" in tusd["args"]
