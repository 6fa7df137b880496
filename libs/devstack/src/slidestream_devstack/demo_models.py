"""The demo's models: the reference models pushed, loaded and routed to the demo tenant as an AI
team would (``slidestream models push|load|route``), and per slide what they said.

The reference models are built by ``make models`` into ``.local/models/<name>/`` (``model.pt``
and ``card.json``); the demo deploys every model found there. Their outputs land in
``derived/<tenant>/<slide>/inference/<model>/<version>/``: the summary (class fractions, tiles)
and one heat map per class, copied beside the slide's QC pictures.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from rich.console import Console
from rich.table import Table

from slidestream_devstack.process import child_env

DERIVED_BUCKET = "derived"
SUMMARY_NAME = "summary.json"
RESULTS_TIMEOUT_S = 300
RESULTS_POLL_S = 1.0


@dataclass(frozen=True, slots=True)
class ModelResult:
    model: str
    version: str
    tile_count: int
    summary: dict[str, float]
    heatmaps: tuple[Path, ...]


def reference_models(models_dir: Path) -> list[Path]:
    """The model folders ``make models`` wrote (each with ``model.pt`` and ``card.json``)."""
    if not models_dir.is_dir():
        return []
    return sorted(
        folder
        for folder in models_dir.iterdir()
        if (folder / "model.pt").is_file() and (folder / "card.json").is_file()
    )


def _models_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    token = Path(env["MODELS_TOKEN_FILE"]).read_text(encoding="utf-8").strip()
    return subprocess.run(
        [str(Path(sys.executable).parent / "slidestream"), "models", *args, "--json"],
        capture_output=True,
        text=True,
        check=False,
        # The token travels in the environment: arguments are visible to ps.
        env=child_env({"SLIDESTREAM_TOKEN": token, "INFERENCE_API": env["INFERENCE_API"]}),
    )


def deploy(env: dict[str, str], folders: list[Path], tenant: str, console: Console) -> list[str]:
    """Push (an existing version is kept: versions are immutable), load with its canary and
    route to ``tenant`` every model folder; the names of the models that are ready."""
    ready: list[str] = []
    for folder in folders:
        name = json.loads((folder / "card.json").read_text(encoding="utf-8"))["name"]
        pushed = _models_cli(
            env, "push", str(folder / "model.pt"), "--card", str(folder / "card.json")
        )
        if pushed.returncode != 0 and "exists" not in (pushed.stdout + pushed.stderr):
            console.print(f"[red]✗[/] model {name}: push failed: {pushed.stderr.strip()[-300:]}")
            continue
        loaded = _models_cli(env, "load", name)
        if loaded.returncode != 0:
            console.print(f"[red]✗[/] model {name}: load failed: {loaded.stderr.strip()[-300:]}")
            continue
        routed = _models_cli(env, "route", name, "--tenant", tenant, "--min-qc", "warn")
        if routed.returncode != 0:
            console.print(f"[red]✗[/] model {name}: route failed: {routed.stderr.strip()[-300:]}")
            continue
        console.print(f"[green]✓[/] model [bold]{name}[/] pushed, loaded (canary) and routed")
        ready.append(name)
    return ready


def fetch_results(
    env: dict[str, str], tenant: str, slide_id: str, models: list[str], target: Path
) -> list[ModelResult]:
    """Wait for every routed model's summary of the slide, then copy summaries and heat maps
    into ``target``; the results found within :data:`RESULTS_TIMEOUT_S`."""
    from minio import Minio

    endpoint = urlsplit(env["S3_ENDPOINT"])
    client = Minio(
        endpoint.netloc,
        access_key=env["S3_ACCESS_KEY"],
        secret_key=env["S3_SECRET_KEY"],
        secure=endpoint.scheme == "https",
    )
    prefix = f"{tenant}/{slide_id}/inference/"
    deadline = time.monotonic() + RESULTS_TIMEOUT_S
    while True:
        names = [str(o.object_name) for o in client.list_objects(DERIVED_BUCKET, prefix, True)]
        summaries = [n for n in names if n.endswith("/" + SUMMARY_NAME)]
        done = {n.removeprefix(prefix).split("/")[0] for n in summaries}
        if set(models) <= done or time.monotonic() > deadline:
            break
        time.sleep(RESULTS_POLL_S)
    target.mkdir(parents=True, exist_ok=True)
    results: list[ModelResult] = []
    for key in sorted(summaries):
        model, version = key.removeprefix(prefix).split("/")[:2]
        folder = key.rsplit("/", 1)[0] + "/"
        body = json.loads(client.get_object(DERIVED_BUCKET, key).read())
        heatmaps = []
        for name in names:
            if name.startswith(folder) and name.endswith(".png"):
                local = target / f"{model}-{name.rsplit('/', 1)[-1]}"
                client.fget_object(DERIVED_BUCKET, name, str(local))
                heatmaps.append(local)
        summary = {k: float(v) for k, v in body.get("summary", {}).items()}
        results.append(
            ModelResult(model, version, int(body.get("tile_count", 0)), summary, tuple(heatmaps))
        )
    return results


def results_table(results: list[ModelResult]) -> Table:
    """One row per model: tiles analysed, the classes by share of tiles, the heat maps."""
    table = Table(title="models run", title_justify="left")
    table.add_column("model")
    table.add_column("tiles", justify="right")
    table.add_column("slide scores (share of tiles per class)")
    table.add_column("heat maps")
    for result in results:
        fractions = sorted(
            (
                (value, key.removeprefix("fraction:"))
                for key, value in result.summary.items()
                if key.startswith("fraction:")
            ),
            reverse=True,
        )
        scores = ", ".join(f"{label} {value:.0%}" for value, label in fractions[:4]) or "-"
        pictures = ", ".join(f"[link=file://{p}]{p.name}[/link]" for p in result.heatmaps) or "-"
        table.add_row(f"{result.model} v{result.version}", str(result.tile_count), scores, pictures)
    return table
