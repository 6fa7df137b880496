"""The sample slides of the tests live in the library (``slidestream_wsi.samples``), because
``make demo`` and the benchmarks use them too; this module keeps the tests' import path."""

from slidestream_wsi.samples import *  # noqa: F403
from slidestream_wsi.samples import TOKENS, PlantedSlide  # noqa: F401 - explicit re-exports
