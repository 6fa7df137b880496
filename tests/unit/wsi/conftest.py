"""Fixtures of the slidestream_wsi tests: synthetic planted slides and OpenSlide's test slides
(the latter from tests.support.openslide, shared with the deid integration tests)."""

from __future__ import annotations

import shutil

import pytest

import slidestream_samples as samples
from slidestream_wsi.deid import DeidPolicy, DeidResult, deidentify
from slidestream_wsi.pseudonyms import PseudonymKey
from tests.support.openslide import openslide_fixtures  # noqa: F401 - a fixture, used by name


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
