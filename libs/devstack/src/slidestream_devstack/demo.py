"""``make demo``: sample slides through every pipeline stage that runs in the local stack.

1. a ``demo`` tenant (token kept in ``.local/demo/token``, mode 0600);
2. sample slides of several vendor layouts with *invented* patient data planted in their
   metadata and label images (``slidestream_samples``), plus one file that is not a slide;
3. ``slidestream upload`` (the partner CLI, resumable, with progress bars);
4. each slide followed with ``slidestream status --wait`` up to the furthest stage whose service
   runs now, and one table per slide: stage by stage, the state and the time it took;
5. the reference models (``make models``) pushed, loaded and routed to the tenant before the
   upload; per slide, the models run, its slide scores and heat maps beside the QC pictures.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from rich.console import Console
from rich.table import Table

from slidestream_contracts.states import Stage
from slidestream_devstack.demo_models import deploy, fetch_results, reference_models, results_table
from slidestream_devstack.demo_search import show_search, tissue_type_slides, write_manifest
from slidestream_devstack.paths import StackPaths

DEMO_TENANT = "demo"
QC_BUCKET = "derived"
STAGE_TIMEOUT_S = 300
STAGE_SERVICE: dict[Stage, str] = {
    Stage.UPLOADED: "upload",
    Stage.DEIDENTIFIED: "deid",
    Stage.CONVERTED: "convert",
    Stage.QC: "qc",
    Stage.INFERRED: "inference",
    Stage.INDEXED: "search",
}
"""Which service completes each stage: the demo follows a slide as far as services run."""


@dataclass(frozen=True, slots=True)
class StageResult:
    stage: Stage
    state: str
    reason: str
    seconds: float
    reached: bool


def _cli() -> str:
    return str(Path(sys.executable).parent / "slidestream")


def stages_to_follow(running_parts: Sequence[str]) -> list[Stage]:
    """The pipeline stages, in order, up to the first whose service does not run."""
    stages: list[Stage] = []
    for stage in Stage:
        if STAGE_SERVICE[stage] not in running_parts:
            break
        stages.append(stage)
    return stages


def demo_token(paths: StackPaths, console: Console) -> str:
    token_file = paths.local / "demo" / "token"
    if token_file.exists():
        return token_file.read_text(encoding="utf-8").strip()
    token_file.parent.mkdir(parents=True, exist_ok=True)
    created = subprocess.run(
        [_cli(), "admin", "tenant", "create", DEMO_TENANT, "--json"],
        capture_output=True,
        text=True,
        check=False,
        cwd=paths.root,
    )
    if created.returncode != 0:
        raise RuntimeError(
            "could not create the demo tenant (it may exist from an older .local/; "
            f"`slidestream admin token create {DEMO_TENANT}` issues a new token): "
            f"{created.stderr.strip()[-500:]}"
        )
    token = str(json.loads(created.stdout)["token"])
    token_file.touch(mode=0o600)
    token_file.write_text(token, encoding="utf-8")
    console.print(f"[green]✓[/] tenant [bold]{DEMO_TENANT}[/] created; token in {token_file}")
    return token


def make_sample_slides(folder: Path) -> list[Path]:
    """A few layouts (small, a few MB each) and one impostor; reused when already there."""
    import slidestream_samples as samples  # imported late: numpy/pydicom are not needed otherwise

    folder.mkdir(parents=True, exist_ok=True)
    makers: dict[str, Callable[[Path], samples.PlantedSlide]] = {
        "svs": samples.make_svs,
        "ome": samples.make_ome_tiff,
        "philips": samples.make_philips_tiff,
        "dicom": samples.make_dicom_series,
    }
    slides: list[Path] = []
    for name, make in makers.items():
        work = folder.parent / "work" / name
        existing = sorted(folder.glob(f"{name}-*"))
        if existing:
            slides.append(existing[0])
            continue
        work.mkdir(parents=True, exist_ok=True)
        planted = make(work)
        if planted.path.is_dir():  # a DICOM series travels as one zip
            target = folder / f"{name}-series.zip"
            with zipfile.ZipFile(target, "w") as archive:
                for file in planted.files:
                    archive.write(file, arcname=file.name)
        else:
            target = folder / f"{name}-{planted.path.name}"
            planted.path.replace(target)
        slides.append(target)
    slides.append(he_like_slide(folder))
    impostor = folder / "not-a-slide.svs"
    if not impostor.exists():
        impostor.write_text("This is a text file with a slide's extension.\n", encoding="utf-8")
    slides.append(impostor)
    return slides


def he_like_slide(folder: Path) -> Path:
    """A painted H&E-like section at 1 µm/px (a few mm of tissue, like a small biopsy) that a
    quality gate should pass: the planted-PHI samples above are a millimetre wide and fail QC
    for too little tissue, which the demo shows too."""
    from slidestream_samples import painting  # late: OpenCV is only needed here

    target = folder / "he-section.tiff"
    if not target.exists():
        painted = painting.paint_tissue(seed=11)
        painting.write_tiff_pyramid(target, painted.rgb, painted.mpp_um)
    return target


def upload(
    slides: Sequence[Path],
    *,
    api: str,
    token: str,
    state_dir: Path,
    manifest: Path | None = None,
) -> list[dict[str, str]]:
    """Upload with the partner CLI: its progress bars on stderr, one JSON line per file."""
    batch = ["--manifest", str(manifest)] if manifest is not None else []
    result = subprocess.run(
        [
            _cli(),
            "upload",
            *map(str, slides),
            *batch,
            "--json",
            "--api",
            api,
            "--token",
            token,
            "--state-dir",
            str(state_dir),
        ],
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


MAX_REASON_CHARS = 160


def _reason(body: dict[str, object]) -> str:
    """The reason code with its human detail (QC lists the measures that warned or failed)."""
    reason, detail = str(body.get("reason") or ""), str(body.get("detail") or "")
    text = f"{reason}: {detail}" if reason and detail else reason or detail
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 1] + "…"


def follow(slide_id: str, stages: Sequence[Stage], *, api: str, token: str) -> list[StageResult]:
    results: list[StageResult] = []
    for stage in stages:
        started = time.monotonic()
        waited = subprocess.run(
            [
                _cli(),
                "status",
                slide_id,
                "--wait",
                stage.value,
                "--timeout",
                str(STAGE_TIMEOUT_S),
                "--json",
                "--api",
                api,
                "--token",
                token,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        body = json.loads(waited.stdout) if waited.stdout.strip().startswith("{") else {}
        results.append(
            StageResult(
                stage=stage,
                state=str(body.get("state") or "-"),
                reason=_reason(body),
                seconds=time.monotonic() - started,
                reached=waited.returncode == 0,
            )
        )
        if waited.returncode != 0:
            break
    return results


def slide_table(filename: str, slide_id: str, results: Sequence[StageResult]) -> Table:
    """One row per stage (reached or not, and how long it was waited for); the slide's state
    and reason, which every wait reports, once, on the last row."""
    table = Table(title=f"{filename}  [dim]{slide_id}[/]", title_justify="left")
    table.add_column("stage")
    table.add_column("wait", justify="right")
    table.add_column("state now")
    table.add_column("reason")
    for index, result in enumerate(results):
        mark = "[green]✓[/]" if result.reached else "[red]✗[/]"
        last = index == len(results) - 1
        table.add_row(
            f"{mark} {result.stage.value}",
            f"{result.seconds:.1f} s",
            result.state if last else "",
            result.reason if last else "",
        )
    return table


def fetch_qc_pictures(env: dict[str, str], slide_id: str, target: Path) -> Path | None:
    """Copy the slide's QC report and pictures (``derived/<tenant>/<slide>/qc/``) next to the
    demo, so they can be opened in a browser; returns the HTML summary's path."""
    from minio import Minio

    endpoint = urlsplit(env["S3_ENDPOINT"])
    client = Minio(
        endpoint.netloc,
        access_key=env["S3_ACCESS_KEY"],
        secret_key=env["S3_SECRET_KEY"],
        secure=endpoint.scheme == "https",
    )
    prefix = f"{DEMO_TENANT}/{slide_id}/qc/"
    summary: Path | None = None
    for item in client.list_objects(QC_BUCKET, prefix=prefix, recursive=True):
        name = str(item.object_name)
        local = target / name.removeprefix(prefix)
        client.fget_object(QC_BUCKET, name, str(local))
        if local.name == "report.html":
            summary = local
    return summary


def _deploy_models(
    env: dict[str, str], running_parts: Sequence[str], paths: StackPaths, console: Console
) -> list[str]:
    """The reference models (``make models``) pushed, loaded and routed to the demo tenant."""
    if "inference" not in running_parts:
        return []
    folders = reference_models(paths.local / "models")
    if not folders:
        console.print("[yellow]no reference models in .local/models: run `make models`[/]")
        return []
    return deploy(env, folders, DEMO_TENANT, console)


def run_demo(env: dict[str, str], running_parts: Sequence[str], paths: StackPaths) -> int:
    """The whole demo; returns the number of slides that did not go as far as expected."""
    console = Console()
    api = env["UPLOAD_API"]
    token = demo_token(paths, console)
    models = _deploy_models(env, running_parts, paths, console)
    folder = paths.local / "demo" / "slides"
    slides = make_sample_slides(folder)
    searchable = bool(models) and "catalog" in running_parts and "SEARCH_API" in env
    planted = tissue_type_slides(folder, paths.local / "demo" / "work") if searchable else []
    count = len(slides) + len(planted)
    console.print(f"[bold]uploading {count} files[/] with `slidestream upload` …")
    state_dir = paths.local / "demo" / "state"
    uploaded = upload(slides, api=api, token=token, state_dir=state_dir)
    if planted:
        manifest = write_manifest(planted, paths.local / "demo" / "work" / "cohort.csv")
        cohort = [slide.path for slide in planted]
        uploaded += upload(cohort, api=api, token=token, state_dir=state_dir, manifest=manifest)
    stages = stages_to_follow(running_parts)
    if not models:  # nothing routed: no slide can reach "inferred"
        stages = stages[: stages.index(Stage.INFERRED)] if Stage.INFERRED in stages else stages
    console.print(f"following each slide through: {', '.join(s.value for s in stages)}")
    followed = [
        follow_and_show(line, stages, models, env=env, token=token, paths=paths, console=console)
        for line in uploaded
    ]
    surprises = sum(surprise for surprise, _ in followed)
    if planted:
        names = {line.get("slide_id", ""): Path(line.get("path", "?")).name for line in uploaded}
        analysed = {
            line.get("slide_id", "")
            for line, (_, inferred) in zip(uploaded, followed, strict=True)
            if inferred
        }
        by_name = {slide.path.name: slide for slide in planted}
        by_id = {
            sid: by_name[name] for sid, name in names.items() if name in by_name and sid in analysed
        }
        surprises += show_search(env, token, by_id, names, console)
    console.print(
        f"\n[bold]The upload API stays up at {api}[/] (token: {paths.local / 'demo' / 'token'}); "
        "`make status` shows the stack, `make down` stops it."
    )
    return surprises


def follow_and_show(
    line: dict[str, str],
    stages: Sequence[Stage],
    models: Sequence[str],
    *,
    env: dict[str, str],
    token: str,
    paths: StackPaths,
    console: Console,
) -> tuple[int, bool]:
    """One uploaded file followed and shown: 1 when it did not go as far as expected (else 0),
    and whether the models analysed it."""
    name = Path(line.get("path", "?")).name
    slide_id = line.get("slide_id") or ""
    if not slide_id:
        console.print(f"[red]✗[/] {name}: {line.get('error') or 'no slide id'}")
        return 1, False
    results = follow(slide_id, stages, api=env["UPLOAD_API"], token=token)
    console.print(slide_table(name, slide_id, results))
    if any(r.stage == Stage.QC and r.reached for r in results):
        summary = fetch_qc_pictures(env, slide_id, paths.local / "demo" / "qc" / name)
        if summary is not None:
            console.print(f"  QC pictures: [link=file://{summary}]{summary}[/link]")
    inferred = any(r.stage == Stage.INFERRED and r.reached for r in results)
    if models and inferred:
        pictures = paths.local / "demo" / "qc" / name
        found = fetch_results(env, DEMO_TENANT, slide_id, list(models), pictures)
        console.print(results_table(found))
    expected_rejection = name == "not-a-slide.svs"
    # A slide QC fails is never analysed: stopping there is the pipeline working.
    stopped_by_qc = bool(results) and results[-1].state == "qc_failed"
    all_reached = len(results) == len(stages) and all(r.reached for r in results)
    went_through = stopped_by_qc or all_reached
    return int(went_through == expected_rejection), inferred
