"""Values that fit the DICOM attribute they are written into (PS3.5 §6.2, Table 6.2-1).

Every text value slidestream writes into a DICOM dataset — pseudonyms, dummies, constants —
goes through :func:`attribute_value`, which knows the attribute's value representation from
the data dictionary (PS3.6) and the VR's length limit, so no writer has to remember that an
Accession Number is a Short String of at most 16 characters. :func:`violations` walks a finished
dataset and names every value that breaks its VR's limit: the unit tests run it over everything
de-identification and conversion write.
"""

from __future__ import annotations

from collections.abc import Iterator

from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from slidestream_wsi.pseudonyms import fit_pseudonym

MAX_CHARS_BY_VR: dict[str, int] = {
    "AE": 16,
    "AS": 4,
    "CS": 16,
    "DA": 8,
    "DS": 16,
    "DT": 26,
    "IS": 12,
    "LO": 64,
    "LT": 10240,
    "PN": 64,
    "SH": 16,
    "ST": 1024,
    "TM": 14,
    "UI": 64,
}
"""Maximum characters of one value, per VR (PS3.5 Table 6.2-1; PN: per component group)."""

NUMERIC_DUMMY_BY_VR: dict[str, str] = {"AS": "000D", "DS": "0", "IS": "0"}
"""Dummies for VRs whose values must parse as numbers or ages (PS3.5 Table 6.2-1)."""


def max_chars(keyword: str) -> int | None:
    """The longest value the attribute ``keyword`` takes, or ``None`` for unbounded VRs."""
    return MAX_CHARS_BY_VR.get(dictionary_VR(keyword))


def attribute_value(keyword: str, value: str, *, pseudonym: bool = False) -> str:
    """``value`` made to fit the attribute ``keyword``.

    A pseudonym is shortened by its one rule (:func:`~slidestream_wsi.pseudonyms.fit_pseudonym`:
    stable, and a prefix of the full pseudonym after its key version), so a case pseudonym
    written as an Accession Number (SH, 16) still names the case. Any other value must already
    fit: a constant that does not is a programming error, raised rather than cut silently.
    """
    limit = max_chars(keyword)
    if limit is None or len(value) <= limit:
        return value
    if pseudonym:
        return fit_pseudonym(value, limit)
    raise ValueError(
        f"{len(value)} characters do not fit {keyword} ({dictionary_VR(keyword)}, max {limit})"
    )


def dummy_value(keyword: str, text: str) -> str:
    """A non-empty dummy for ``keyword`` (PS3.15 E.3.1 action D) that its VR accepts."""
    vr = dictionary_VR(keyword)
    if vr in NUMERIC_DUMMY_BY_VR:
        return NUMERIC_DUMMY_BY_VR[vr]
    limit = MAX_CHARS_BY_VR.get(vr)
    return text if limit is None else text[:limit]


def violations(ds: Dataset) -> list[str]:
    """Every value in ``ds`` (nested sequences and file meta included) longer than its VR allows,
    as ``"Keyword (VR): N > max"``."""
    found = []
    for path, vr, text in _text_values(ds):
        limit = MAX_CHARS_BY_VR.get(vr)
        if vr == "PN":
            # PS3.5 §6.2: the 64-character limit applies to each component group.
            too_long = any(len(group) > MAX_CHARS_BY_VR["PN"] for group in text.split("="))
        else:
            too_long = limit is not None and len(text) > limit
        if too_long:
            found.append(f"{path} ({vr}): {len(text)} > {limit}")
    return found


def _text_values(ds: Dataset, prefix: str = "") -> Iterator[tuple[str, str, str]]:
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        yield from _text_values(meta, "file_meta.")
    for elem in ds:
        name = prefix + (elem.keyword or str(elem.tag))
        if elem.VR == "SQ":
            for index, item in enumerate(elem.value or []):
                yield from _text_values(item, f"{name}[{index}].")
            continue
        if elem.VR not in MAX_CHARS_BY_VR or elem.value is None:
            continue
        values = elem.value if isinstance(elem.value, MultiValue | list) else [elem.value]
        for value in values:
            yield name, elem.VR, str(value)
