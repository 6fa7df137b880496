"""The models API's use cases over an in-memory bucket, a fake Triton and SQLite."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4, uuid5

import pytest

from slidestream_contracts.events import InferenceRequestedV1, SlideEvent
from slidestream_contracts.model_card import ModelCardV1
from slidestream_inference.adapters.model_bucket import ModelBucket
from slidestream_inference.adapters.routes import Route, SqlBackfills
from slidestream_inference.adapters.triton import ModelNotReadyError, TritonUnavailableError
from slidestream_inference.domain.routing import MinQc
from slidestream_inference.models_admin import (
    CanaryFailedError,
    InvalidRequestError,
    ModelsAdmin,
    NotFoundError,
    UnavailableError,
    VersionExistsError,
)
from slidestream_modelrepo import pack_upload
from tests.support.fakes import MemoryStore, RecordingPublisher
from tests.support.models_api import (
    FakeSlideCatalogue,
    FakeTriton,
    model_card,
    torchscript_bytes,
)

TENANT = "lab-a"


async def push(admin: ModelsAdmin, card: ModelCardV1) -> list[str]:
    archive = pack_upload(card, {"model.pt": torchscript_bytes()})
    pushed = await admin.push(card.name, card.version, card.model_dump_json().encode(), archive)
    return pushed.files


async def test_a_torchscript_push_writes_the_version_card_last(
    admin: ModelsAdmin, store: MemoryStore, bucket: ModelBucket
) -> None:
    files = await push(admin, model_card())

    assert files[-1] == "tissue/1/card.json"
    assert set(files) == {key for (_bucket, key) in store.objects}
    assert {"tissue/config.pbtxt", "tissue/1/model.py", "tissue/1/model.pt"} <= set(files)
    assert bucket.versions("tissue") == {"1": model_card()}


async def test_a_triton_directory_push_is_stored_under_the_cards_version(
    admin: ModelsAdmin, bucket: ModelBucket, store: MemoryStore
) -> None:
    # A valid directory: the layout a TorchScript push generates, pushed as a directory.
    generated = await push(admin, model_card(name="generated"))
    directory = {
        key.removeprefix("generated/").replace("1/", "7/", 1): b"x"
        for key in generated
        if not key.endswith("card.json")
    }
    config = store.objects[("models", "generated/config.pbtxt")]
    directory["config.pbtxt"] = config.replace(b"generated", b"tissue")
    directory["7/model.pt"] = torchscript_bytes()
    card = model_card(version="7")

    pushed = await admin.push(
        "tissue", "7", card.model_dump_json().encode(), pack_upload(card, directory)
    )

    assert pushed.files[-1] == "tissue/7/card.json"
    assert "tissue/7/model.pt" in pushed.files
    assert list(bucket.versions("tissue")) == ["7"]


async def test_an_existing_version_is_never_rewritten(admin: ModelsAdmin) -> None:
    await push(admin, model_card())

    with pytest.raises(VersionExistsError, match="immutable"):
        await push(admin, model_card(description="another model"))


async def test_a_card_for_another_path_is_refused_per_field(admin: ModelsAdmin) -> None:
    card = model_card(version="2")
    archive = pack_upload(card, {"model.pt": torchscript_bytes()})

    with pytest.raises(InvalidRequestError) as refused:
        await admin.push("tissue", "3", card.model_dump_json().encode(), archive)

    assert [problem.field for problem in refused.value.problems] == ["version"]


async def test_an_invalid_card_names_its_problems(admin: ModelsAdmin) -> None:
    broken = model_card().model_dump(mode="json")
    broken["outputs"][0]["labels"] = ["tumour"]  # one label for an output of width 4

    with pytest.raises(InvalidRequestError) as refused:
        await admin.push("tissue", "1", json.dumps(broken).encode(), b"")

    assert any("label" in problem.message for problem in refused.value.problems)


async def test_an_upload_that_is_no_archive_is_refused(admin: ModelsAdmin) -> None:
    card = model_card()

    with pytest.raises(InvalidRequestError) as refused:
        await admin.push("tissue", "1", card.model_dump_json().encode(), b"not an archive")

    assert [problem.field for problem in refused.value.problems] == ["archive"]


async def test_a_new_version_keeps_the_models_signature(
    admin: ModelsAdmin, bucket: ModelBucket
) -> None:
    await push(admin, model_card())
    wider = model_card(version="2").model_dump(mode="json")
    wider["outputs"][1]["width"] = 32

    with pytest.raises(InvalidRequestError, match="signature") as refused:
        await push(admin, ModelCardV1.model_validate(wider))

    assert refused.value.problems
    assert list(bucket.versions("tissue")) == ["1"]


async def test_load_answers_ready_after_the_canary_had_the_declared_shapes(
    admin: ModelsAdmin, triton: FakeTriton
) -> None:
    await push(admin, model_card())
    await push(admin, model_card(version="2"))

    loaded = await admin.load("tissue")

    assert loaded.state == "READY"
    assert loaded.canary.outputs == {"PROBS": [1, 4], "EMBED": [1, 16]}
    assert [(name, version) for name, version, _ in triton.canaries] == [
        ("tissue", "1"),
        ("tissue", "2"),
    ]
    assert triton.canaries[0][2] == {"INPUT": (1, 3, 64, 64)}
    status = await admin.status("tissue")
    assert status.loaded_at is not None
    assert [(v.version, v.state, v.device) for v in status.versions] == [
        ("1", "READY", "cpu"),
        ("2", "READY", "cpu"),
    ]
    assert [s.compute_ms_mean for s in status.statistics] == [7.25, 7.25]


async def test_a_canary_with_the_wrong_shape_unloads_and_says_why(
    admin: ModelsAdmin, triton: FakeTriton
) -> None:
    await push(admin, model_card())
    triton.lies["PROBS"] = (1, 3)

    with pytest.raises(CanaryFailedError, match=r"PROBS has shape \(1, 3\).*\(1, 4\)"):
        await admin.load("tissue")

    assert ("unload", "tissue") in triton.calls
    assert (await admin.status("tissue")).loaded_at is None


async def test_a_version_triton_could_not_load_fails_the_load(
    admin: ModelsAdmin, triton: FakeTriton
) -> None:
    await push(admin, model_card())
    triton.not_ready[("tissue", "1")] = "model.py: ImportError"

    with pytest.raises(CanaryFailedError, match="ImportError"):
        await admin.load("tissue")

    assert ("unload", "tissue") in triton.calls


async def test_triton_down_is_unavailable_not_a_model_fault(
    admin: ModelsAdmin, triton: FakeTriton
) -> None:
    await push(admin, model_card())
    triton.down = True

    with pytest.raises(UnavailableError):
        await admin.load("tissue")
    status = await admin.status("tissue")

    assert [(v.state, v.reason) for v in status.versions] == [
        ("UNKNOWN", "Triton at fake: connection refused")
    ]


async def test_a_model_triton_refuses_to_load_is_reported(
    admin: ModelsAdmin, triton: FakeTriton
) -> None:
    await push(admin, model_card())
    triton.refuse_load.add("tissue")

    with pytest.raises(CanaryFailedError, match="could not load"):
        await admin.load("tissue")


async def test_unknown_models_are_not_found(admin: ModelsAdmin) -> None:
    for call in (admin.load, admin.unload, admin.status):
        with pytest.raises(NotFoundError):
            await call("nothing")


async def test_unload_forgets_the_load_time(admin: ModelsAdmin) -> None:
    await push(admin, model_card())
    await admin.load("tissue")

    unloaded = await admin.unload("tissue")

    assert unloaded.state == "UNLOADED"
    status = await admin.status("tissue")
    assert status.loaded_at is None
    assert [(v.state, v.device) for v in status.versions] == [("UNAVAILABLE", None)]


async def test_a_restarted_triton_gets_back_what_was_loaded_and_nothing_else(
    admin: ModelsAdmin, triton: FakeTriton
) -> None:
    await push(admin, model_card())
    await push(admin, model_card(name="embedder"))
    await admin.load("tissue")
    await admin.load("embedder")
    await admin.unload("embedder")
    triton.loaded.clear()  # Triton restarted: explicit model control forgot every model

    assert await admin.restore("tissue") is True
    assert await admin.restore("embedder") is False  # unloaded on purpose: stays unloaded
    assert set(triton.loaded) == {"tissue"}
    triton.loaded.clear()
    triton.down = True
    with pytest.raises(TritonUnavailableError):  # still down: the slide waits, never dropped
        await admin.restore("tissue")
    triton.down = False
    triton.lies["PROBS"] = (1, 3)
    with pytest.raises(ModelNotReadyError):  # back, but the model lies: retried, then a DLQ
        await admin.restore("tissue")


async def test_the_model_list_shows_every_version_and_its_state(admin: ModelsAdmin) -> None:
    await push(admin, model_card())
    await push(admin, model_card(name="embedder"))
    await admin.load("tissue")

    listed = await admin.list_models()

    assert [(m.name, [(v.version, v.state) for v in m.versions]) for m in listed.models] == [
        ("embedder", [("1", "UNLOADED")]),
        ("tissue", [("1", "READY")]),
    ]
    assert listed.models[1].versions[0].card["input"]["tile_size_px"] == 64


async def test_routes_are_created_replaced_listed_and_deleted(admin: ModelsAdmin) -> None:
    await push(admin, model_card())
    await admin.put_route(Route("tissue", TENANT, MinQc.PASS))
    await admin.put_route(Route("tissue", TENANT, MinQc.WARN))
    await admin.put_route(Route("tissue", TENANT, MinQc.PASS, stain="H&E", version="1"))

    routes = (await admin.list_routes()).routes

    assert [(r.stain, r.min_qc, r.version) for r in routes] == [
        (None, MinQc.WARN, None),
        ("H&E", MinQc.PASS, "1"),
    ]
    assert (await admin.delete_routes("tissue", TENANT)).deleted == 2
    assert (await admin.list_routes()).routes == []


async def test_a_route_needs_the_model_and_its_pinned_version(admin: ModelsAdmin) -> None:
    with pytest.raises(NotFoundError):
        await admin.put_route(Route("tissue", TENANT, MinQc.PASS))
    await push(admin, model_card())

    with pytest.raises(InvalidRequestError) as refused:
        await admin.put_route(Route("tissue", TENANT, MinQc.PASS, version="9"))

    assert [problem.field for problem in refused.value.problems] == ["version"]


def requests(publisher: RecordingPublisher) -> list[tuple[SlideEvent, UUID | None]]:
    return [(e, i) for e, i in publisher.sent if isinstance(e, InferenceRequestedV1)]


async def test_a_backfill_requests_each_routed_qc_slide_once(
    admin: ModelsAdmin, catalogue: FakeSlideCatalogue, publisher: RecordingPublisher
) -> None:
    await push(admin, model_card())
    await push(admin, model_card(version="2"))
    now = datetime.now(UTC)
    passed, warned, failed, other_tenant, old = (uuid4() for _ in range(5))
    catalogue.slides = [
        (passed, TENANT, "p1", "H&E", "pass", now),
        (warned, TENANT, "p1", "H&E", "warn", now),
        (failed, TENANT, "p1", "H&E", "fail", now),
        (other_tenant, "lab-b", "p1", "H&E", "pass", now),
        (old, TENANT, "p1", "H&E", "pass", now - timedelta(days=30)),
    ]
    await admin.put_route(Route("tissue", TENANT, MinQc.WARN))
    await admin.put_route(Route("tissue", TENANT, MinQc.PASS, stain="H&E"))

    started = await admin.backfill(
        "tissue",
        since=now - timedelta(days=1),
        slide_ids=None,
        version=None,
        requested_by="ai-team",
    )

    sent = requests(publisher)
    assert started.requested == 2
    assert [event.slide_id for event, _ in sent] == [passed, warned]
    for event, event_id in sent:
        assert isinstance(event, InferenceRequestedV1)
        assert (event.model_name, event.model_version) == ("tissue", "2")
        assert (event.backfill_id, event.requested_by) == (started.backfill_id, "ai-team")
        assert event_id == uuid5(started.backfill_id, str(event.slide_id))
    progress = await admin.backfill_progress("tissue", started.backfill_id)
    assert (progress.requested, progress.done, progress.failed) == (2, 0, 0)


async def test_backfill_progress_counts_what_the_consume_path_reports(
    admin: ModelsAdmin, catalogue: FakeSlideCatalogue
) -> None:
    await push(admin, model_card())
    slides = [uuid4(), uuid4(), uuid4()]
    catalogue.slides = [(s, TENANT, None, None, "pass", datetime.now(UTC)) for s in slides]
    await admin.put_route(Route("tissue", TENANT, MinQc.PASS))
    started = await admin.backfill(
        "tissue", since=None, slide_ids=slides[:2], version="1", requested_by="t"
    )
    backfills = admin.backfills
    assert isinstance(backfills, SqlBackfills)

    backfills.record_backfill_result(started.backfill_id, ok=True)
    backfills.record_backfill_result(started.backfill_id, ok=False)

    progress = await admin.backfill_progress("tissue", started.backfill_id)
    assert (progress.requested, progress.done, progress.failed) == (2, 1, 1)
    with pytest.raises(NotFoundError):
        await admin.backfill_progress("other", started.backfill_id)


async def test_a_backfill_needs_a_route_and_an_existing_version(admin: ModelsAdmin) -> None:
    await push(admin, model_card())

    with pytest.raises(InvalidRequestError, match="no routes"):
        await admin.backfill("tissue", since=None, slide_ids=None, version=None, requested_by="")
    with pytest.raises(InvalidRequestError, match="no version 5"):
        await admin.backfill("tissue", since=None, slide_ids=None, version="5", requested_by="")


class BrokenPublisher(RecordingPublisher):
    async def publish(self, event: SlideEvent, *, event_id: UUID | None = None) -> None:
        if self.sent:
            raise ConnectionError("kafka is gone")
        await super().publish(event, event_id=event_id)


async def test_a_backfill_cut_short_counts_only_what_was_published(
    admin: ModelsAdmin, catalogue: FakeSlideCatalogue
) -> None:
    await push(admin, model_card())
    catalogue.slides = [(uuid4(), TENANT, None, None, "pass", datetime.now(UTC)) for _ in range(3)]
    await admin.put_route(Route("tissue", TENANT, MinQc.PASS))
    broken = replace(admin, publisher=BrokenPublisher())

    with pytest.raises(UnavailableError, match="after 1 of 3") as stopped:
        await broken.backfill("tissue", since=None, slide_ids=None, version=None, requested_by="")

    backfill_id = UUID(str(stopped.value).split()[1])
    progress = await admin.backfill_progress("tissue", backfill_id)
    assert progress.requested == 1
