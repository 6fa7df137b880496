"""Fixtures of the slidestream_wsi tests: synthetic planted slides and OpenSlide's test slides."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

import slidestream_samples as samples
from slidestream_wsi.deid import DeidPolicy, DeidResult, deidentify
from slidestream_wsi.pseudonyms import PseudonymKey

REPO_ROOT = Path(__file__).resolve().parents[3]
FIXTURE_CACHE = REPO_ROOT / ".local" / "fixtures"
OPENSLIDE_PYTHON_VERSION = "1.4.7"
OPENSLIDE_FIXTURES = ("small.svs", "boxes.tiff", "boxes_0.dcm", "unreadable.svs", "unopenable.tiff")


@pytest.fixture(scope="session")
def key() -> PseudonymKey:
    return PseudonymKey(1, b"test-secret-key-of-32-bytes-min!")


@pytest.fixture(scope="session")
def policy(key: PseudonymKey) -> DeidPolicy:
    return DeidPolicy(tenant="acme", key=key, pseudonym="PSN-1-TESTPSEUDONYM0000")


@pytest.fixture(scope="session")
def planted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, samples.PlantedSlide]:
    """Every synthetic layout, generated once per session."""
    directory = tmp_path_factory.mktemp("planted")
    return {name: make(directory) for name, make in samples.LAYOUT_MAKERS.items()}


@pytest.fixture(scope="session")
def deidentified(
    planted: dict[str, samples.PlantedSlide],
    policy: DeidPolicy,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, DeidResult]:
    """Every planted layout de-identified once per session."""
    directory = tmp_path_factory.mktemp("deidentified")
    results: dict[str, DeidResult] = {}
    for name, slide in planted.items():
        source = slide.path
        if name == "dicom":
            archive = directory / "series.zip"
            shutil.make_archive(str(archive.with_suffix("")), "zip", source)
            results[name] = deidentify(archive, directory / "dicom_out", policy)
        else:
            results[name] = deidentify(source, directory / f"out_{source.name}", policy)
    return results


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
