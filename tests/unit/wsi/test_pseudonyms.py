from __future__ import annotations

import re

import pytest

from slidestream_wsi.pseudonyms import PseudonymKey, date_shift_days, pseudonym, remap_uid

SECRET = b"0123456789abcdef0123456789abcdef"


def test_same_input_and_key_version_give_the_same_pseudonym() -> None:
    key = PseudonymKey(3, SECRET)
    first = pseudonym(key, "acme", "case", "S24-1234")
    assert first == pseudonym(PseudonymKey(3, SECRET), "acme", "case", "S24-1234")
    assert re.fullmatch(r"PSN-3-[A-Z2-7]{20}", first)


def test_rotation_tenant_and_role_change_the_pseudonym() -> None:
    old = pseudonym(PseudonymKey(1, SECRET), "acme", "case", "S24-1234")
    assert old != pseudonym(PseudonymKey(2, SECRET), "acme", "case", "S24-1234")
    assert old != pseudonym(PseudonymKey(1, b"x" * 32), "acme", "case", "S24-1234")
    assert old != pseudonym(PseudonymKey(1, SECRET), "other", "case", "S24-1234")
    assert old != pseudonym(PseudonymKey(1, SECRET), "acme", "patient", "S24-1234")
    # Length-prefixed fields: shifting characters between fields changes the result.
    assert pseudonym(PseudonymKey(1, SECRET), "ab", "c", "d") != pseudonym(
        PseudonymKey(1, SECRET), "a", "bc", "d"
    )


def test_key_is_validated_and_never_shown() -> None:
    with pytest.raises(ValueError):
        PseudonymKey(1, b"short")
    with pytest.raises(ValueError):
        PseudonymKey(0, SECRET)
    assert SECRET.decode() not in repr(PseudonymKey(1, SECRET))


def test_uid_remapping_is_stable_and_valid() -> None:
    key = PseudonymKey(1, SECRET)
    uid = remap_uid(key, "acme", "1.2.3.4.5")
    assert uid == remap_uid(key, "acme", "1.2.3.4.5")
    assert uid != remap_uid(PseudonymKey(2, SECRET), "acme", "1.2.3.4.5")
    assert re.fullmatch(r"2\.25\.[1-9][0-9]*", uid) and len(uid) <= 64


def test_date_shift_is_stable_and_backwards() -> None:
    key = PseudonymKey(1, SECRET)
    shift = date_shift_days(key, "acme", "MRN-1")
    assert shift == date_shift_days(key, "acme", "MRN-1")
    assert -3650 <= shift <= -1
