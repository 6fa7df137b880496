"""Developer tools the stack does not run but the tests, `make chart` and `make models` need.

Helm is built from source through the Go module proxy, pinned in
:mod:`slidestream_devstack.versions`, into ``.local/bin`` — the same way as tusd and MinIO, so a
fresh machine needs only Go. Torch lives only in Triton's virtual environment, built by the
Triton part itself.

``python -m slidestream_devstack.tools helm`` builds Helm if needed and prints its path;
``python -m slidestream_devstack.tools toxiproxy`` builds Toxiproxy (the fault suite's proxy) if
needed and prints its path;
``python -m slidestream_devstack.tools triton-python`` builds Triton's environment if needed
and prints its Python (the one with torch: ``make models`` trains with it).
``python -m slidestream_devstack.tools chart-offline`` prints a chart directory Helm can lint and
render without network (see :func:`chart_for_offline_render`).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import yaml
from rich.console import Console

from slidestream_devstack import versions
from slidestream_devstack.builds import go_install
from slidestream_devstack.paths import StackPaths, find_repo_root
from slidestream_devstack.stack import make_context
from slidestream_devstack.toxiproxy import ensure_toxiproxy
from slidestream_devstack.triton import TritonPart


def ensure_helm(paths: StackPaths | None = None, console: Console | None = None) -> Path:
    """The pinned ``helm`` binary, built on first use (about 3 minutes on 2 cores)."""
    paths = paths or StackPaths(find_repo_root(None))
    paths.ensure()
    binary = paths.bin / "helm"
    go_install(
        module=versions.HELM_MODULE,
        version=versions.HELM_VERSION,
        binary=binary,
        console=console or Console(stderr=True),
        log_path=paths.logs / "helm-build.log",
    )
    return binary


def ensure_triton_python(console: Console | None = None) -> Path:
    """The Python of Triton's environment (torch, numpy), built on first use (several GB)."""
    ctx = make_context(console=console or Console(stderr=True))
    triton = TritonPart()
    triton.build(ctx)
    return triton.venv(ctx) / "bin" / "python"


def chart_for_offline_render(chart: Path, work: Path) -> tuple[Path, list[str]]:
    """``chart`` as it is when every dependency's archive is in its ``charts/`` folder (``helm
    dependency build`` put it there); otherwise a copy under ``work`` without the dependencies
    whose archives are missing, and their names. Helm refuses to lint or render a chart with a
    missing dependency even when its condition is off, and a machine without the dependency's
    repository (this one: only package registries) cannot fetch it."""
    manifest = yaml.safe_load((chart / "Chart.yaml").read_text(encoding="utf-8"))
    dependencies = manifest.get("dependencies") or []
    present = {archive.name for archive in (chart / "charts").glob("*.tgz")}
    missing = [
        dep["name"] for dep in dependencies if f"{dep['name']}-{dep['version']}.tgz" not in present
    ]
    if not missing:
        return chart, []
    copy = work / chart.name
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(chart, copy)
    manifest["dependencies"] = [dep for dep in dependencies if dep["name"] not in missing]
    if not manifest["dependencies"]:
        del manifest["dependencies"]
    (copy / "Chart.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")
    return copy, missing


def main(argv: list[str]) -> int:
    if argv == ["helm"]:
        print(ensure_helm())
        return 0
    if argv == ["toxiproxy"]:
        print(ensure_toxiproxy(StackPaths(find_repo_root(None)), Console(stderr=True)))
        return 0
    if argv == ["triton-python"]:
        print(ensure_triton_python())
        return 0
    if argv == ["chart-offline"]:
        chart = find_repo_root(None) / "charts" / "slidestream"
        rendered, missing = chart_for_offline_render(chart, Path(tempfile.mkdtemp()))
        if missing:
            print(f"rendering without the dependencies {', '.join(missing)}", file=sys.stderr)
        print(rendered)
        return 0
    usage = "usage: python -m slidestream_devstack.tools helm|toxiproxy|triton-python|chart-offline"
    print(usage, file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
