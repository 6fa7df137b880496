"""Models on several Triton replicas: load with a canary on each, all or nothing; unload,
restore and the state views per replica (explicit model control loads only where asked)."""

from __future__ import annotations

import pytest

from slidestream_inference.adapters.triton import ModelNotReadyError, TritonUnavailableError
from slidestream_inference.models_admin import CanaryFailedError, ModelsAdmin, UnavailableError
from tests.support.models_api import FakeTritonReplicas, model_card, push_torchscript

FIRST, SECOND, THIRD = "10.0.0.1:8001", "10.0.0.2:8001", "10.0.0.3:8001"


def states(replicas: FakeTritonReplicas, name: str) -> dict[str, list[str]]:
    return {
        endpoint: [state.state for state in triton.loaded.get(name, {}).values()]
        for endpoint, triton in replicas.tritons.items()
    }


async def test_a_load_reaches_every_replica_and_each_passes_its_canary(
    replicated: ModelsAdmin, replicas: FakeTritonReplicas
) -> None:
    await push_torchscript(replicated, model_card())

    loaded = await replicated.load("tissue")

    assert loaded.state == "READY" and set(loaded.replicas) == {FIRST, SECOND, THIRD}
    assert states(replicas, "tissue") == {FIRST: ["READY"], SECOND: ["READY"], THIRD: ["READY"]}
    assert all(len(triton.canaries) == 1 for triton in replicas.tritons.values())
    status = await replicated.status("tissue")
    [version] = status.versions
    assert (version.state, version.device) == ("READY", "cpu")
    assert [(r.endpoint, r.state) for r in version.replicas] == [
        (FIRST, "READY"),
        (SECOND, "READY"),
        (THIRD, "READY"),
    ]
    [statistics] = status.statistics  # each fake replica ran 12 inferences at 7.25 ms
    assert (statistics.inference_count, statistics.compute_ms_mean) == (36, 7.25)
    assert status.loaded_at is not None


async def test_a_canary_failing_on_one_replica_unloads_it_everywhere_and_names_it(
    replicated: ModelsAdmin, replicas: FakeTritonReplicas
) -> None:
    await push_torchscript(replicated, model_card())
    replicas.tritons[SECOND].lies["PROBS"] = (1, 3)

    with pytest.raises(CanaryFailedError, match=rf"1 of 3 replicas: {SECOND}: .*PROBS") as failed:
        await replicated.load("tissue")

    assert [problem.field for problem in failed.value.problems] == [f"replica {SECOND}"]
    assert all(("unload", "tissue") in t.calls for t in replicas.tritons.values())
    status = await replicated.status("tissue")
    assert status.loaded_at is None  # not wanted: the reconciler leaves it unloaded
    assert [v.state for v in status.versions] == ["UNAVAILABLE"]


async def test_an_unreachable_replica_makes_the_load_unavailable_and_the_state_mixed(
    replicated: ModelsAdmin, replicas: FakeTritonReplicas
) -> None:
    await push_torchscript(replicated, model_card())
    replicas.tritons[THIRD].down = True

    with pytest.raises(UnavailableError, match=THIRD) as failed:
        await replicated.load("tissue")

    assert [problem.field for problem in failed.value.problems] == [f"replica {THIRD}"]
    # Only unreachable: the replicas that passed keep the model, nothing is recorded.
    assert states(replicas, "tissue")[FIRST] == ["READY"]
    [version] = (await replicated.status("tissue")).versions
    assert version.state == "MIXED"
    assert version.reason.startswith(f"{THIRD}: UNKNOWN (Triton at fake")
    assert version.device == "cpu"
    assert (await replicated.status("tissue")).loaded_at is None


async def test_restore_loads_only_on_the_replica_that_restarted(
    replicated: ModelsAdmin, replicas: FakeTritonReplicas
) -> None:
    await push_torchscript(replicated, model_card())
    await replicated.load("tissue")
    restarted = replicas.tritons[SECOND]
    restarted.loaded.clear()  # explicit model control: a restarted replica has nothing loaded

    [version] = (await replicated.status("tissue")).versions
    assert (version.state, version.reason) == ("MIXED", f"{SECOND}: UNLOADED")
    assert await replicated.restore("tissue") is True

    loads = {e: t.calls.count(("load", "tissue")) for e, t in replicas.tritons.items()}
    assert loads == {FIRST: 1, SECOND: 2, THIRD: 1}
    assert [v.state for v in (await replicated.status("tissue")).versions] == ["READY"]


async def test_restore_waits_for_an_unreachable_replica_and_retries_a_lying_one(
    replicated: ModelsAdmin, replicas: FakeTritonReplicas
) -> None:
    await push_torchscript(replicated, model_card())
    await replicated.load("tissue")
    replicas.tritons[FIRST].loaded.clear()
    replicas.tritons[FIRST].down = True

    with pytest.raises(TritonUnavailableError, match=FIRST):
        await replicated.restore("tissue")
    replicas.tritons[FIRST].down = False
    replicas.tritons[FIRST].lies["EMBED"] = (1, 8)
    with pytest.raises(ModelNotReadyError, match=FIRST):
        await replicated.restore("tissue")

    # The lying replica alone is unloaded again; the others keep serving.
    assert states(replicas, "tissue")[FIRST] == ["UNAVAILABLE"]
    assert ("unload", "tissue") not in replicas.tritons[SECOND].calls


async def test_an_unload_is_remembered_even_when_a_replica_cannot_be_reached(
    replicated: ModelsAdmin, replicas: FakeTritonReplicas
) -> None:
    await push_torchscript(replicated, model_card())
    await replicated.load("tissue")
    replicas.tritons[THIRD].down = True

    with pytest.raises(UnavailableError, match=THIRD):
        await replicated.unload("tissue")

    assert states(replicas, "tissue")[FIRST] == ["UNAVAILABLE"]
    assert await replicated.restore("tissue") is False  # nobody loads it back


async def test_no_replica_behind_the_name_is_unavailable_and_states_are_unknown(
    replicated: ModelsAdmin, replicas: FakeTritonReplicas
) -> None:
    await push_torchscript(replicated, model_card())
    replicas.unresolvable = True

    with pytest.raises(UnavailableError, match="does not resolve"):
        await replicated.load("tissue")
    listed = await replicated.list_models()

    [version] = listed.models[0].versions
    assert (version.state, version.replicas) == ("UNKNOWN", [])
    assert "does not resolve" in version.reason
