"""The interpreter's GIL switch interval, shortened while a conversion runs."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

GIL_SWITCH_INTERVAL_S = 0.0005
"""GIL switch interval during a conversion (the interpreter's default is 0.005 s)."""

_switch_lock = threading.Lock()
_switch_users = 0
_switch_saved = 0.0


@contextmanager
def short_gil_switch_interval() -> Iterator[None]:
    """Shorten the interpreter's GIL switch interval while a conversion runs.

    A pool thread that finishes a ~1 ms decode must take the GIL back to return the tile;
    with the default 5 ms interval it can wait that long behind the copying thread's Python,
    and the cores idle (measured: 8.4 s instead of 5.8 s for the 50k x 40k benchmark slide).
    Process-wide, so nested or concurrent conversions share one saved value."""
    global _switch_users, _switch_saved  # one interpreter-wide setting
    with _switch_lock:
        if _switch_users == 0:
            _switch_saved = sys.getswitchinterval()
            sys.setswitchinterval(min(_switch_saved, GIL_SWITCH_INTERVAL_S))
        _switch_users += 1
    try:
        yield
    finally:
        with _switch_lock:
            _switch_users -= 1
            if _switch_users == 0:
                sys.setswitchinterval(_switch_saved)
