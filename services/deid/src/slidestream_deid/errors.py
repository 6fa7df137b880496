"""The deid service's one error of its own."""

from __future__ import annotations

from slidestream_platform.errors import PoisonError


class DeidPoisonError(PoisonError):
    """This slide can never be de-identified (the reason says why; never a metadata value)."""

    reason = "invalid-slide"
