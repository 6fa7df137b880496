"""One model on every Triton replica: load with a canary, load where missing, unload, states.

Each replica is asked on its own (explicit model control loads only where asked), all at once.
Every function answers one :class:`ReplicaOutcome` per replica instead of raising, so callers
can say which replica failed and why: the models API's ``load`` is all or nothing (a model
fault on one replica unloads it from all of them), the reconciler and ``restore`` act on each
replica alone.

The canary: a batch of one all-zero tile of the card's input shape per version with a card;
every declared output must come back with the declared shape and data type. A replica is
*missing* a model when none of the model's versions is ``READY`` there (a restarted or new
replica): a load always loads every version in the bucket (``version_policy: all``), so a
replica serving some version is left alone, and a version pushed later is served only after an
operator's ``load``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from slidestream_contracts.model_card import ModelCardV1
from slidestream_inference.adapters.model_bucket import Versions
from slidestream_inference.adapters.triton import TritonUnavailableError
from slidestream_inference.adapters.triton_replicas import Replica, ReplicaStates
from slidestream_inference.adapters.triton_repository import (
    TritonRefusedError,
    TritonRepository,
)
from slidestream_inference.domain.tensors import expected_shape
from slidestream_inference.models_views import READY, CanaryView


class ReplicaFaultError(Exception):
    """One replica's step failed: unreachable (Triton down, restarting), or a model fault (a load
    Triton refused, a version not ready, a canary that contradicts the card)."""

    def __init__(self, message: str, *, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable


@dataclass(frozen=True, slots=True)
class ReplicaOutcome:
    endpoint: str
    canary: CanaryView | None = None
    """The newest version's canary, when this call loaded the model there."""
    problem: str = ""
    """Why the step failed on this replica; empty when it succeeded."""
    unreachable: bool = False

    @property
    def ok(self) -> bool:
        return not self.problem


async def _canary(
    repository: TritonRepository, name: str, version: str, card: ModelCardV1
) -> CanaryView:
    side = card.input.tile_size_px
    outcome = await repository.canary(
        name,
        version,
        {card.input.name: (1, 3, side, side)},
        [output.name for output in card.outputs],
    )
    for output in card.outputs:
        want = expected_shape(output, batch=1)
        got = outcome.shapes.get(output.name)
        if got != want:
            raise ReplicaFaultError(
                f"{name} version {version}: output {output.name} has shape {got} where the "
                f"card declares {want}"
            )
        if outcome.dtypes.get(output.name) != output.dtype:
            raise ReplicaFaultError(
                f"{name} version {version}: output {output.name} is "
                f"{outcome.dtypes.get(output.name)} where the card declares {output.dtype}"
            )
    shapes = {key: list(shape) for key, shape in outcome.shapes.items()}
    return CanaryView(seconds=outcome.seconds, outputs=shapes)


async def _canaries(repository: TritonRepository, name: str, versions: Versions) -> CanaryView:
    try:
        states = {s.version: s for s in await repository.states(name)}
        view: CanaryView | None = None
        for version, card in versions.items():
            state = states.get(version)
            if state is None or state.state != READY:
                reason = state.reason if state is not None and state.reason else "not loaded"
                raise ReplicaFaultError(f"{name} version {version} is not ready: {reason}")
            view = await _canary(repository, name, version, card)
    except (TritonRefusedError, TritonUnavailableError) as error:
        raise ReplicaFaultError(f"canary request to {name} failed: {error}") from error
    assert view is not None  # the caller passes at least one version
    return view


async def load_checked(repository: TritonRepository, name: str, versions: Versions) -> CanaryView:
    """Load ``name`` on one replica and run its canaries; :class:`ReplicaFaultError` if not."""
    try:
        await repository.load(name)
    except TritonUnavailableError as error:
        raise ReplicaFaultError(str(error), unreachable=True) from error
    except TritonRefusedError as error:
        raise ReplicaFaultError(f"Triton could not load {name}: {error}") from error
    return await _canaries(repository, name, versions)


async def unload_quietly(repository: TritonRepository, name: str) -> None:
    # The failure's reason is the answer; Triton's state shows whatever the unload left.
    with contextlib.suppress(TritonRefusedError, TritonUnavailableError):
        await repository.unload(name)


async def _each(
    replicas: Sequence[Replica], step: Callable[[Replica], Awaitable[CanaryView | None]]
) -> list[ReplicaOutcome]:
    async def one(replica: Replica) -> ReplicaOutcome:
        try:
            return ReplicaOutcome(replica.endpoint, canary=await step(replica))
        except ReplicaFaultError as error:
            problem, unreachable = str(error), error.unreachable
            return ReplicaOutcome(replica.endpoint, problem=problem, unreachable=unreachable)

    return list(await asyncio.gather(*(one(replica) for replica in replicas)))


async def load_everywhere(
    replicas: Sequence[Replica], name: str, versions: Versions
) -> list[ReplicaOutcome]:
    """Load and canary on every replica. A model fault on any replica unloads the model from
    all of them, so no replica serves what another proved wrong (a slide's result must not
    depend on the replica it reached); a replica that was only unreachable changes nothing."""

    async def load(replica: Replica) -> CanaryView:
        return await load_checked(replica.repository, name, versions)

    outcomes = await _each(replicas, load)
    if any(not outcome.ok and not outcome.unreachable for outcome in outcomes):
        await asyncio.gather(*(unload_quietly(r.repository, name) for r in replicas))
    return outcomes


async def serves(repository: TritonRepository, name: str) -> bool:
    """Whether some version of ``name`` is ``READY`` on this replica."""
    try:
        return any(state.state == READY for state in await repository.states(name))
    except TritonUnavailableError as error:
        raise ReplicaFaultError(str(error), unreachable=True) from error
    except TritonRefusedError as error:
        raise ReplicaFaultError(f"Triton did not list its models: {error}") from error


async def ensure_on(replica: Replica, name: str, versions: Versions) -> CanaryView | None:
    """Load ``name`` with its canary on a replica missing it (its canary), else nothing (None).
    A model fault unloads it from this replica only: it served nothing of it before."""
    if await serves(replica.repository, name):
        return None
    try:
        return await load_checked(replica.repository, name, versions)
    except ReplicaFaultError as error:
        if not error.unreachable:
            await unload_quietly(replica.repository, name)
        raise


async def ensure_everywhere(
    replicas: Sequence[Replica], name: str, versions: Versions
) -> list[ReplicaOutcome]:
    """:func:`ensure_on` on every replica."""

    async def ensure(replica: Replica) -> CanaryView | None:
        return await ensure_on(replica, name, versions)

    return await _each(replicas, ensure)


async def unload_everywhere(replicas: Sequence[Replica], name: str) -> list[ReplicaOutcome]:
    async def unload(replica: Replica) -> None:
        try:
            await replica.repository.unload(name)
        except TritonUnavailableError as error:
            raise ReplicaFaultError(str(error), unreachable=True) from error
        except TritonRefusedError as error:
            raise ReplicaFaultError(f"Triton refused to unload {name}: {error}") from error

    return await _each(replicas, unload)


async def states_everywhere(replicas: Sequence[Replica], name: str) -> list[ReplicaStates]:
    """Each replica's state of each version of ``name`` it knows, or why it did not answer."""

    async def states(replica: Replica) -> ReplicaStates:
        try:
            found = await replica.repository.states(name)
        except TritonUnavailableError as error:
            return ReplicaStates(replica.endpoint, down=str(error))
        return ReplicaStates(replica.endpoint, {s.version: s for s in found})

    return list(await asyncio.gather(*(states(replica) for replica in replicas)))
