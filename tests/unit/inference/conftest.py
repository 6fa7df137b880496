"""One converted slide with known grey stripes, shared by the inference tests."""

from __future__ import annotations

import pytest

from tests.support.inference import ConvertedSlide, convert_striped


@pytest.fixture(scope="session")
def striped(tmp_path_factory: pytest.TempPathFactory) -> ConvertedSlide:
    return convert_striped(tmp_path_factory.mktemp("striped"))
