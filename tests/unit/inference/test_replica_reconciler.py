"""The reconcile loop: every Triton replica serves the wanted models, whatever restarted."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from slidestream_inference.adapters.model_bucket import ModelBucket
from slidestream_inference.adapters.routes import SqlModelLoads
from slidestream_inference.adapters.triton_repository import VersionState
from slidestream_inference.models_admin import ModelsAdmin
from slidestream_inference.replica_reconciler import ReconcileMetrics, ReplicaReconciler
from tests.support.models_api import FakeTritonReplicas, model_card, push_torchscript

FIRST, SECOND, THIRD = "10.0.0.1:8001", "10.0.0.2:8001", "10.0.0.3:8001"
MISSING = "slidestream_inference_triton_models_missing"


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def reconciler(
    replicas: FakeTritonReplicas, engine: Engine, bucket: ModelBucket, registry: CollectorRegistry
) -> ReplicaReconciler:
    return ReplicaReconciler(
        replicas=replicas,
        loads=SqlModelLoads(engine),
        bucket=bucket,
        metrics=ReconcileMetrics.register(registry),
    )


def missing_gauge(registry: CollectorRegistry, endpoint: str) -> float | None:
    return registry.get_sample_value(MISSING, {"replica": endpoint})


def loads_of(replicas: FakeTritonReplicas, name: str) -> dict[str, int]:
    return {e: t.calls.count(("load", name)) for e, t in replicas.tritons.items()}


async def test_a_restarted_replica_gets_the_wanted_models_before_any_slide_asks(
    replicated: ModelsAdmin,
    replicas: FakeTritonReplicas,
    reconciler: ReplicaReconciler,
    registry: CollectorRegistry,
) -> None:
    await push_torchscript(replicated, model_card())
    await replicated.load("tissue")
    replicas.tritons[SECOND].loaded.clear()  # restarted: explicit model control forgot it

    missing = await reconciler.reconcile_once()

    assert missing == {FIRST: [], SECOND: [], THIRD: []}
    assert loads_of(replicas, "tissue") == {FIRST: 1, SECOND: 2, THIRD: 1}
    assert len(replicas.tritons[SECOND].canaries) == 2  # the reload proved itself again
    assert [v.state for v in (await replicated.status("tissue")).versions] == ["READY"]
    assert missing_gauge(registry, SECOND) == 0
    await reconciler.reconcile_once()  # nothing missing: nothing loaded again
    assert loads_of(replicas, "tissue") == {FIRST: 1, SECOND: 2, THIRD: 1}


async def test_only_wanted_models_are_loaded_and_others_are_left_alone(
    replicated: ModelsAdmin, replicas: FakeTritonReplicas, reconciler: ReplicaReconciler
) -> None:
    await push_torchscript(replicated, model_card())
    await push_torchscript(replicated, model_card(name="embedder"))
    await replicated.load("embedder")
    await replicated.unload("embedder")
    experiment = {"1": VersionState("1", "READY", "")}
    replicas.tritons[FIRST].loaded["experiment"] = experiment  # loaded by hand

    assert await reconciler.reconcile_once() == {FIRST: [], SECOND: [], THIRD: []}

    assert loads_of(replicas, "tissue") == {FIRST: 0, SECOND: 0, THIRD: 0}
    assert loads_of(replicas, "embedder") == {FIRST: 1, SECOND: 1, THIRD: 1}  # the API's
    assert replicas.tritons[FIRST].loaded["experiment"] == experiment
    assert all(("unload", "experiment") not in t.calls for t in replicas.tritons.values())


async def test_a_replica_failing_the_canary_is_counted_missing_and_unloaded_alone(
    replicated: ModelsAdmin,
    replicas: FakeTritonReplicas,
    reconciler: ReplicaReconciler,
    registry: CollectorRegistry,
) -> None:
    await push_torchscript(replicated, model_card())
    await replicated.load("tissue")
    replicas.tritons[THIRD].loaded.clear()
    replicas.tritons[THIRD].lies["PROBS"] = (1, 3)  # e.g. a replica on a broken node

    missing = await reconciler.reconcile_once()

    assert missing == {FIRST: [], SECOND: [], THIRD: ["tissue"]}
    assert missing_gauge(registry, THIRD) == 1 and missing_gauge(registry, FIRST) == 0
    assert ("unload", "tissue") in replicas.tritons[THIRD].calls
    assert ("unload", "tissue") not in replicas.tritons[FIRST].calls
    replicas.tritons[THIRD].lies.clear()  # mended: the next round loads it
    assert (await reconciler.reconcile_once())[THIRD] == []
    assert missing_gauge(registry, THIRD) == 0


async def test_unreachable_replicas_and_names_are_reported_never_raised(
    replicated: ModelsAdmin,
    replicas: FakeTritonReplicas,
    reconciler: ReplicaReconciler,
    registry: CollectorRegistry,
) -> None:
    await push_torchscript(replicated, model_card())
    await replicated.load("tissue")
    replicas.tritons[FIRST].down = True

    assert (await reconciler.reconcile_once())[FIRST] == ["tissue"]
    replicas.unresolvable = True
    assert await reconciler.reconcile_once() == {}
    replicas.unresolvable = False
    del replicas.tritons[FIRST]  # scaled down: its series goes too
    await reconciler.reconcile_once()
    assert missing_gauge(registry, FIRST) is None
    assert missing_gauge(registry, SECOND) == 0


@dataclass
class UnloadedMidRound:
    """Loads whose wanted list was read just before an operator unloaded everything."""

    names: list[str]
    forgotten: set[str] = field(default_factory=set)

    def record(self, model_name: str, canary_s: float) -> None: ...

    def loaded_at(self, model_name: str) -> datetime | None:
        return None if model_name in self.forgotten else datetime.now(UTC)

    def forget(self, model_name: str) -> None:
        self.forgotten.add(model_name)

    def wanted(self) -> list[str]:
        names = list(self.names)
        self.forgotten.update(names)  # the unload lands right after the list was read
        return names


async def test_a_model_unloaded_during_a_round_is_not_loaded_back(
    replicated: ModelsAdmin,
    replicas: FakeTritonReplicas,
    bucket: ModelBucket,
    registry: CollectorRegistry,
) -> None:
    await push_torchscript(replicated, model_card())
    reconciler = ReplicaReconciler(
        replicas=replicas,
        loads=UnloadedMidRound(["tissue"]),
        bucket=bucket,
        metrics=ReconcileMetrics.register(registry),
    )

    assert await reconciler.reconcile_once() == {FIRST: [], SECOND: [], THIRD: []}
    assert loads_of(replicas, "tissue") == {FIRST: 0, SECOND: 0, THIRD: 0}
