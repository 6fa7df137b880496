"""Which failed slide a partner may fix by stating a fact, and with what (issue 18).

A fix answers one failure reason of :data:`slidestream_contracts.slide_facts.FIXABLE` (the slide
states no pixel spacing: the partner gives ``mpp_um``); the step that failed then runs again,
once. Anything else is refused with what the partner can do instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from slidestream_contracts.events import SlideFactsV1
from slidestream_contracts.lifecycle import SlideRecord
from slidestream_contracts.reasons import REASONS
from slidestream_contracts.slide_facts import FIXABLE
from slidestream_contracts.states import SlideState, Step
from slidestream_upload.domain.admission import Refusal


@dataclass(frozen=True, slots=True)
class FixPlan:
    step: Step
    reason: str
    facts: SlideFactsV1


def plan_fix(record: SlideRecord | None, facts: SlideFactsV1 | None) -> FixPlan | Refusal:
    """The step to run again with ``facts``, or why the slide cannot be fixed so."""
    if record is None or record.state is not SlideState.failed(record.step):
        state = record.state.value if record is not None else "not in the pipeline yet"
        return Refusal(409, "not-failed", f"the slide has not failed ({state}): nothing to fix")
    reason = record.reason or ""
    fixable = FIXABLE.get(reason)
    if fixable is None or fixable[0] != record.step.value:
        words = REASONS.get(reason)
        action = f" {words.action}" if words else ""
        return Refusal(
            409,
            "not-fixable",
            f"{reason or 'this failure'} is not fixed by stating a fact.{action}",
        )
    needed = fixable[1]
    if facts is None or getattr(facts, needed) is None:
        return Refusal(
            422, "missing-fact", f"{reason} is fixed by stating {needed} (e.g. --mpp-um 0.25)"
        )
    return FixPlan(record.step, reason, facts)
