"""The rule every consumer applies before its handler: an event's objects lie under its own
slide's ``<tenant>/<slide_id>/`` prefix, wherever in the event they are referenced."""

from __future__ import annotations

from uuid import UUID

import pytest

from slidestream_contracts.events import Model, ObjectRef, SlideQcV1
from slidestream_platform.errors import ForeignObjectKeyError, InvalidEventError
from slidestream_platform.event_refs import (
    check_event_refs,
    check_message_refs,
    key_problem,
    object_refs,
)

SLIDE = UUID("0193a0d6-0000-7000-8000-000000000001")
PREFIX = f"acme/{SLIDE}/"


def ref(key: str) -> ObjectRef:
    return ObjectRef(bucket="derived", key=key, sha256="0" * 64, size_bytes=1)


class Inner(Model):
    one: ObjectRef | None = None
    many: tuple[ObjectRef, ...] = ()


class Outer(Model):
    inner: Inner
    listed: list[Inner] = []
    named: dict[str, ObjectRef] = {}
    other: int = 0


def test_references_are_found_at_any_depth() -> None:
    a, b, c, d = (ref(PREFIX + name) for name in "abcd")
    event = Outer(inner=Inner(one=a, many=(b,)), listed=[Inner(many=(c,))], named={"x": d})
    assert sorted(r.key for r in object_refs(event)) == [r.key for r in (a, b, c, d)]
    assert list(object_refs(Outer(inner=Inner()))) == []


@pytest.mark.parametrize(
    "key", [PREFIX + "original", PREFIX + "dicom/level-0.dcm", PREFIX + "inference/m/1/a.npz"]
)
def test_keys_below_the_slides_prefix_pass(key: str) -> None:
    assert key_problem(key, "acme", SLIDE) is None


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        (f"globex/{SLIDE}/original", "is not under"),
        ("acme/0193a0d6-0000-7000-8000-000000000002/original", "is not under"),
        (f"acme/{str(SLIDE).upper()}/original", "is not under"),
        (f"/acme/{SLIDE}/original", "is not under"),
        (f"acme-b/{SLIDE}/original", "is not under"),
        (f"acme/{SLIDE}", "is not under"),
        (PREFIX, "empty segment"),
        (PREFIX + "qc//mask.png", "empty segment"),
        (PREFIX + "qc/", "empty segment"),
        (PREFIX + "../other/original", "'..' segment"),
        (PREFIX + "qc/./mask.png", "'.' segment"),
        (PREFIX + "qc\\..\\..\\x", "backslash"),
        (PREFIX + "qc/mask\x00.png", "control character"),
    ],
)
def test_keys_outside_the_slide_or_walking_out_of_it_are_refused(key: str, problem: str) -> None:
    found = key_problem(key, "acme", SLIDE)
    assert found is not None and problem in found


def test_one_foreign_reference_refuses_the_event() -> None:
    event = SlideQcV1(
        slide_id=SLIDE,
        tenant="acme",
        verdict="pass",
        tissue_mask=ref(PREFIX + "qc/tissue-mask.png"),
        dicom=(ref(PREFIX + "dicom/level-0.dcm"), ref(f"globex/{SLIDE}/dicom/level-1.dcm")),
    )
    with pytest.raises(ForeignObjectKeyError) as raised:
        check_event_refs(event)
    assert isinstance(raised.value, InvalidEventError)  # dead-lettered at once
    assert raised.value.reason == "foreign-object-key"
    assert f"s3://derived/globex/{SLIDE}/dicom/level-1.dcm" in str(raised.value)
    check_message_refs("a.topic.without.model", event.model_dump_json().encode())
    with pytest.raises(ForeignObjectKeyError):
        check_message_refs("slides.qc.v1", event.model_dump_json().encode())


@pytest.mark.parametrize("body", [b"{not json", b'{"slide_id": "x"}', b"\xff\xfe"])
def test_a_body_that_does_not_decode_is_left_to_the_handlers_decoding(body: bytes) -> None:
    check_message_refs("slides.qc.v1", body)  # the handler dead-letters it as invalid-event
