"""slidestream_platform.slide_step: the scratch directory and the poison wrapping every slide
step uses."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from slidestream_platform.delivery import disposition
from slidestream_platform.errors import PoisonError, ScratchSpaceError, ScratchTooSmallError
from slidestream_platform.slide_step import poison_on, require_scratch_space, scratch_directory

GIB = 1024**3


class StepPoisonError(PoisonError):
    reason = "invalid-slide"


class LibraryError(Exception):
    reason = "corrupt-slide"


def test_scratch_is_made_under_its_parent_and_removed_after_a_failure(tmp_path: Path) -> None:
    parent = tmp_path / "not-yet" / "there"
    with pytest.raises(RuntimeError), scratch_directory("step-", parent) as scratch:
        (scratch / "in").write_bytes(b"slide")
        assert scratch.parent == parent and scratch.name.startswith("step-")
        raise RuntimeError("the work failed")
    assert list(parent.iterdir()) == []


def test_a_library_error_becomes_the_steps_poison_with_the_library_reason() -> None:
    with pytest.raises(StepPoisonError) as caught, poison_on(LibraryError, StepPoisonError):
        raise LibraryError("level 1 tile 3 does not decode")
    assert caught.value.reason == "corrupt-slide"
    assert str(caught.value) == "LibraryError: level 1 tile 3 does not decode"
    assert isinstance(caught.value.__cause__, LibraryError)


def test_an_error_without_a_reason_takes_the_poisons_and_others_pass_through() -> None:
    with pytest.raises(StepPoisonError) as caught, poison_on(ValueError, StepPoisonError):
        raise ValueError("no reason")
    assert caught.value.reason == "invalid-slide"
    with pytest.raises(KeyError), poison_on(ValueError, StepPoisonError):
        raise KeyError("a bug stays a bug")


@pytest.fixture
def volume(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 10 GiB scratch volume with 3 GiB free."""

    def usage(_path: object) -> shutil._ntuple_diskusage:
        return shutil._ntuple_diskusage(total=10 * GIB, used=7 * GIB, free=3 * GIB)

    monkeypatch.setattr(shutil, "disk_usage", usage)


@pytest.mark.usefixtures("volume")
def test_work_that_fits_the_free_space_goes_ahead(tmp_path: Path) -> None:
    require_scratch_space(tmp_path, 3 * GIB, what="the slide")


@pytest.mark.usefixtures("volume")
def test_work_larger_than_the_free_space_waits_and_names_the_sizes(tmp_path: Path) -> None:
    with pytest.raises(ScratchSpaceError) as raised:
        require_scratch_space(tmp_path, 4 * GIB, what="the zip and its series")
    assert str(raised.value) == (
        f"the zip and its series needs 4.00 GiB of scratch space in {tmp_path}; "
        "3.00 GiB of 10.00 GiB are free"
    )
    verdict = disposition(raised.value)
    assert (verdict.dead_letter_now, verdict.dependency) == (False, "scratch")


@pytest.mark.usefixtures("volume")
def test_work_larger_than_the_whole_volume_is_retried_then_dead_lettered(tmp_path: Path) -> None:
    with pytest.raises(ScratchTooSmallError) as raised:
        require_scratch_space(tmp_path, 11 * GIB, what="the slide")
    assert "the whole volume is 10.00 GiB" in str(raised.value)
    verdict = disposition(raised.value)
    assert (verdict.dead_letter_now, verdict.dependency) == (False, None)
    assert verdict.reason == "scratch-too-small"
