"""What de-identification keeps of the device that scanned a slide: its model, a product name
(``GT450``, ``Leica SCN400``, ``VENTANA DP 200``), which the catalogue filters on. Never the
unit's serial number or ID, dates, users or free text: those name a site or a person.

A model is kept only when it looks like one (a letter, then at most 63 letters, digits, spaces
and ``;._-``), so a field misused for free text goes like any other."""

from __future__ import annotations

import re

SCANNER_MODEL = re.compile(r"^[A-Za-z][A-Za-z0-9 ;._-]{0,63}$")


def is_scanner_model(value: str) -> bool:
    return SCANNER_MODEL.match(value) is not None
