"""OpenSlide's public test slides (from the openslide-python sdist), downloaded once into
.local/fixtures/: a fixture the slide-library unit tests and the deid integration tests share."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURE_CACHE = REPO_ROOT / ".local" / "fixtures"
OPENSLIDE_PYTHON_VERSION = "1.4.7"
OPENSLIDE_FIXTURES = ("small.svs", "boxes.tiff", "boxes_0.dcm", "unreadable.svs", "unopenable.tiff")


def _download_openslide_sdist(target: Path) -> Path:
    """pip-download openslide-python's sdist (it ships OpenSlide's test slides) once."""
    target.mkdir(parents=True, exist_ok=True)
    archives = sorted(target.glob(f"openslide_python-{OPENSLIDE_PYTHON_VERSION}.tar.gz"))
    if archives:
        return archives[0]
    requirement = f"openslide-python=={OPENSLIDE_PYTHON_VERSION}"
    args = ["download", "--no-deps", "--no-binary", ":all:", requirement, "-d", str(target)]
    uv = shutil.which("uv")
    commands = [[uv, "tool", "run", "pip", *args]] if uv else []
    commands.append([sys.executable, "-m", "pip", *args])
    python3 = shutil.which("python3")
    if python3:
        commands.append([python3, "-m", "pip", *args])
    for command in commands:
        done = subprocess.run(command, capture_output=True, timeout=300, check=False)
        archives = sorted(target.glob(f"openslide_python-{OPENSLIDE_PYTHON_VERSION}.tar.gz"))
        if done.returncode == 0 and archives:
            return archives[0]
    # A required fixture: without it the public-slide tests would prove nothing, so fail loudly.
    pytest.fail("could not download the openslide-python sdist (OpenSlide's test slides) from PyPI")


@pytest.fixture(scope="session")
def openslide_fixtures() -> Path:
    """Folder with OpenSlide's public test slides, cached in .local/fixtures/."""
    extracted = FIXTURE_CACHE / f"openslide-python-{OPENSLIDE_PYTHON_VERSION}"
    if all((extracted / name).exists() for name in OPENSLIDE_FIXTURES):
        return extracted
    archive = _download_openslide_sdist(FIXTURE_CACHE)
    extracted.mkdir(parents=True, exist_ok=True)
    prefix = f"openslide_python-{OPENSLIDE_PYTHON_VERSION}/tests/fixtures/"
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            name = member.name.removeprefix(prefix)
            if member.name.startswith(prefix) and name in OPENSLIDE_FIXTURES and member.isfile():
                source = tar.extractfile(member)
                assert source is not None
                (extracted / name).write_bytes(source.read())
    return extracted
