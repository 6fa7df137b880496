"""Slide facts a partner declares: read with their units, refused with the field named."""

from __future__ import annotations

import pytest

from slidestream_contracts.events import SlideFactsV1
from slidestream_contracts.slide_facts import (
    SlideFactsError,
    merge_facts,
    parse_slide_facts,
    spacing_disagreement,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("0.25", 0.25), ("0.5 µm", 0.5), ("0.2527um", 0.2527), (" 1 µm/px ", 1.0), ("2.5e-1", 0.25)],
)
def test_a_spacing_in_micrometres_is_read(raw: str, expected: float) -> None:
    facts = parse_slide_facts({"mpp_um": raw})
    assert facts is not None and facts.mpp_um == pytest.approx(expected)


@pytest.mark.parametrize(
    ("raw", "said"),
    [
        ("250 nm", "unit 'nm' is not accepted"),
        ("0.00025 mm", "unit 'mm' is not accepted"),
        ("250", "outside 0.05-50 µm/px (was it in nm?)"),
        ("0.0003", "(was it in mm?)"),
        ("quarter", "is not a number"),
        ("-0.25", "is not a number"),
    ],
)
def test_a_wrong_unit_or_value_is_refused_with_the_field_named(raw: str, said: str) -> None:
    with pytest.raises(SlideFactsError) as caught:
        parse_slide_facts({"mpp_um": raw})
    assert caught.value.field == "mpp_um"
    assert str(caught.value).startswith("mpp_um: ")
    assert said in str(caught.value)


def test_objective_power_and_scanner() -> None:
    facts = parse_slide_facts({"objective_power": "40x", "scanner": "Aperio GT450", "x": "y"})
    assert facts == SlideFactsV1(objective_power=40.0, scanner="Aperio GT450")
    with pytest.raises(SlideFactsError, match=r"^objective_power: .*outside"):
        parse_slide_facts({"objective_power": "400"})
    with pytest.raises(SlideFactsError, match=r"^scanner: "):
        parse_slide_facts({"scanner": "GT\x00450"})


def test_no_facts_is_none() -> None:
    assert parse_slide_facts({"stain": "H&E", "mpp_um": "  "}) is None


def test_merge_keeps_the_first_and_completes_it() -> None:
    manifest = SlideFactsV1(mpp_um=0.25)
    meta = SlideFactsV1(mpp_um=0.5, scanner="S360")
    assert merge_facts(manifest, meta) == SlideFactsV1(mpp_um=0.25, scanner="S360")
    assert merge_facts(None, meta) == meta
    assert merge_facts(manifest, None) == manifest


def test_disagreement_is_relative_to_the_declared_spacing() -> None:
    assert spacing_disagreement(0.2625, 0.25) == pytest.approx(0.05)
