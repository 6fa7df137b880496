"""docs/ai-teams.md works: its script (docs/examples/ai_teams/deploy.sh) exports, pushes, loads,
routes and backfills a model on the running stack, and the slide gets the model's results."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from slidestream_samples import painting
from tests.support.stack import object_store

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[3]
GUIDE = REPO_ROOT / "docs" / "examples" / "ai_teams"
SLIDESTREAM = Path(sys.executable).with_name("slidestream")
MODEL = "guide-tiles"  # the card's name (docs/examples/ai_teams/card.yaml)
QC_TIMEOUT_S = 300


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SLIDESTREAM), *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=QC_TIMEOUT_S + 60,
        check=False,
        env=env,
    )


def _forget_model(stack_env: dict[str, str], models_env: dict[str, str]) -> None:
    """Versions are immutable: the guide pushes version 1, so a run starts without the model."""
    _cli("models", "unload", MODEL, env=models_env)
    store = object_store(stack_env)
    for item in list(store.list(stack_env["MODELS_BUCKET"], f"{MODEL}/")):
        store.delete(item.bucket, item.key)


@pytest.fixture
def models_env(stack_env: dict[str, str]) -> Iterator[dict[str, str]]:
    token = Path(stack_env["MODELS_TOKEN_FILE"]).read_text(encoding="utf-8").strip()
    env = {
        "PATH": f"{SLIDESTREAM.parent}:/usr/bin:/bin",
        "SLIDESTREAM_TOKEN": token,
        "INFERENCE_API": stack_env["INFERENCE_API"],
        "TORCH_PYTHON": str(REPO_ROOT / ".local" / "triton-venv" / "bin" / "python"),
    }
    _forget_model(stack_env, env)
    yield env
    _forget_model(stack_env, env)


def test_the_guide_runs_and_the_slide_gets_the_models_results(
    stack_env: dict[str, str], models_env: dict[str, str], tmp_path: Path
) -> None:
    tenant = f"guide-{uuid.uuid4().hex[:8]}"
    created = _cli("admin", "tenant", "create", tenant, "--json")
    assert created.returncode == 0, created.stderr[-2000:]
    token = json.loads(created.stdout.strip().splitlines()[-1])["token"]
    # A painted section of a few millimetres: enough tissue to pass QC.
    painted = painting.paint_tissue(seed=11)
    slide = tmp_path / "section.tiff"
    painting.write_tiff_pyramid(slide, painted.rgb, painted.mpp_um)
    api = ["--api", stack_env["UPLOAD_API"], "--token", token, "--json"]
    uploaded = _cli("upload", str(slide), *api)
    slide_id = json.loads(uploaded.stdout.strip().splitlines()[-1])["slide_id"]
    judged = _cli("status", slide_id, "--wait", "qc", "--timeout", str(QC_TIMEOUT_S), *api)
    assert judged.returncode == 0, judged.stdout + judged.stderr
    assert json.loads(judged.stdout)["state"] in ("qc_passed", "qc_warned")

    # The slide went through QC before the route existed: the guide's backfill runs it.
    ran = subprocess.run(
        ["bash", str(GUIDE / "deploy.sh")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**models_env, "TENANT": tenant, "SLIDE_ID": slide_id},
    )
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    assert "1 done, 0 failed" in ran.stdout

    inferred = _cli("status", slide_id, "--wait", "inferred", "--timeout", "60", *api)
    assert inferred.returncode == 0, inferred.stdout
    store = object_store(stack_env)
    prefix = f"{tenant}/{slide_id}/inference/{MODEL}/1/"
    names = {item.key.removeprefix(prefix) for item in store.list("derived", prefix)}
    assert {"summary.json", "scores.npz", "embeddings.npz", "slide-embedding.npy"} <= names
    assert {"heatmap-tissue.png", "heatmap-background.png"} <= names
    with store.open_stream("derived", prefix + "summary.json") as body:
        summary = json.loads(body.read())
    assert summary["tile_count"] > 0 and summary["tile_size_px"] == 64
    fractions = [summary["summary"][f"fraction:{label}"] for label in ("tissue", "background")]
    assert sum(fractions) == pytest.approx(1.0)
    _cli("models", "unroute", MODEL, "--tenant", tenant, env=models_env)
