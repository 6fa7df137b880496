"""Developer tools the stack does not run but the tests, `make chart` and `make models` need.

Helm is built from source through the Go module proxy, pinned in
:mod:`slidestream_devstack.versions`, into ``.local/bin`` — the same way as tusd and MinIO, so a
fresh machine needs only Go. Torch lives only in Triton's virtual environment, built by the
Triton part itself.

``python -m slidestream_devstack.tools helm`` builds Helm if needed and prints its path;
``python -m slidestream_devstack.tools triton-python`` builds Triton's environment if needed
and prints its Python (the one with torch: ``make models`` trains with it).
"""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console

from slidestream_devstack import versions
from slidestream_devstack.builds import go_install
from slidestream_devstack.paths import StackPaths, find_repo_root
from slidestream_devstack.stack import make_context
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


def main(argv: list[str]) -> int:
    if argv == ["helm"]:
        print(ensure_helm())
        return 0
    if argv == ["triton-python"]:
        print(ensure_triton_python())
        return 0
    print("usage: python -m slidestream_devstack.tools helm|triton-python", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
