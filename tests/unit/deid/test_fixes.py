"""A partner's fix (issue 18): deid announces the slide's de-identified event again with the
declared facts, under the fix's id, without doing the work again."""

from __future__ import annotations

from pathlib import Path
from uuid import uuid4

import pytest

from slidestream_contracts.events import (
    SlideDeidentifiedV1,
    SlideFactsV1,
    SlideFixRequestedV1,
)
from slidestream_contracts.states import Step
from slidestream_deid.errors import DeidPoisonError
from tests.support.deid_harness import Harness


def fix_of(event_slide: SlideDeidentifiedV1, sha256: str, step: Step) -> SlideFixRequestedV1:
    return SlideFixRequestedV1(
        slide_id=event_slide.slide_id,
        tenant=event_slide.tenant,
        fix_id=uuid4(),
        step=step,
        reason="missing-pixel-spacing",
        original_sha256=sha256,
        declared=SlideFactsV1(mpp_um=0.25),
    )


async def test_the_declared_facts_travel_on_for_conversion(
    harness: Harness, planted_svs: Path
) -> None:
    declared = SlideFactsV1(mpp_um=0.5, scanner="Scanner X")
    await harness.workflow.on_uploaded(harness.upload(planted_svs, declared=declared))
    [(deidentified, _), _status] = harness.publisher.sent
    assert isinstance(deidentified, SlideDeidentifiedV1) and deidentified.declared == declared


async def test_a_fix_announces_the_deidentified_slide_again_with_the_facts(
    harness: Harness, planted_svs: Path
) -> None:
    uploaded = harness.upload(planted_svs, declared=SlideFactsV1(scanner="Lab scope 2"))
    await harness.workflow.on_uploaded(uploaded)
    [(first, _), _status] = harness.publisher.sent
    assert isinstance(first, SlideDeidentifiedV1)
    calls = harness.tools.deidentify_calls
    fix = fix_of(first, uploaded.original.sha256, Step.CONVERT)

    await harness.workflow.on_fix_requested(fix)
    await harness.workflow.on_fix_requested(fix)  # a redelivery: the same event, same id

    [(again, again_id), (redelivered, redelivered_id)] = harness.publisher.sent[2:]
    assert again == redelivered and again_id == redelivered_id == fix.fix_id
    assert isinstance(again, SlideDeidentifiedV1)
    assert again.declared == SlideFactsV1(mpp_um=0.25, scanner="Lab scope 2")
    assert again.artefacts == first.artefacts  # nothing is de-identified again
    assert harness.tools.deidentify_calls == calls


async def test_a_fix_of_another_step_is_not_deids(harness: Harness, planted_svs: Path) -> None:
    uploaded = harness.upload(planted_svs)
    await harness.workflow.on_uploaded(uploaded)
    [(first, _), _status] = harness.publisher.sent
    assert isinstance(first, SlideDeidentifiedV1)

    await harness.workflow.on_fix_requested(fix_of(first, uploaded.original.sha256, Step.QC))

    assert len(harness.publisher.sent) == 2


async def test_a_fix_for_a_slide_deid_never_passed_is_poison(
    harness: Harness, planted_svs: Path
) -> None:
    uploaded = harness.upload(planted_svs)
    await harness.workflow.on_uploaded(uploaded)
    [(first, _), _status] = harness.publisher.sent
    assert isinstance(first, SlideDeidentifiedV1)
    foreign = fix_of(first, "f" * 64, Step.CONVERT)

    with pytest.raises(DeidPoisonError) as caught:
        await harness.workflow.on_fix_requested(foreign)
    assert caught.value.reason == "fix-without-decision"
