"""slidestream_platform.slide_step: the scratch directory and the poison wrapping every slide
step uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from slidestream_platform.errors import PoisonError
from slidestream_platform.slide_step import poison_on, scratch_directory


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
