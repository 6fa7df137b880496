"""The stores inference reads: slides (upload and QC facts, either first), routes in SQL, and
model cards in the models bucket."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from uuid import uuid4

import pytest
from sqlalchemy import Engine, create_engine

from slidestream_contracts.events import (
    ObjectRef,
    QcVerdict,
    SlideFormat,
    SlideQcV1,
    SlideUploadedV1,
)
from slidestream_inference.adapters.model_cards import InvalidModelCardError, StoreModelCards
from slidestream_inference.adapters.routes import Route, SqlRoutes
from slidestream_inference.adapters.slide_records import SqlSlideRecords
from slidestream_inference.adapters.tables import metadata
from slidestream_inference.domain.routing import MinQc, RouteMatch
from tests.support.fakes import MemoryStore
from tests.support.inference import model_card, store_card

TENANT = "lab-i"


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = create_engine(f"sqlite:///{tmp_path / 'inference.db'}")
    metadata.create_all(engine)
    return engine


def uploaded(slide_id: object, stain: str | None) -> SlideUploadedV1:
    return SlideUploadedV1(
        slide_id=slide_id,
        tenant=TENANT,
        original=ObjectRef(bucket="quarantine", key="k", sha256="0" * 64, size_bytes=1),
        container_format=SlideFormat.TIFF,
        upload_id="u",
        stain=stain,
    )


def test_the_stain_and_the_qc_event_meet_whichever_comes_first(engine: Engine) -> None:
    records = SqlSlideRecords(engine)
    first, second = uuid4(), uuid4()
    qc = SlideQcV1(slide_id=first, tenant=TENANT, verdict=QcVerdict.WARN)
    assert records.record_qc(qc).stain is None
    facts = records.record_upload(uploaded(first, "H&E"))
    assert facts.stain == "H&E" and facts.qc == qc and facts.project is None
    assert records.record_upload(uploaded(second, "PAS")).qc is None
    later = SlideQcV1(slide_id=second, tenant=TENANT, verdict=QcVerdict.PASS)
    assert records.record_qc(later).stain == "PAS"
    older = later.model_copy(
        update={"verdict": QcVerdict.FAIL, "occurred_at": later.occurred_at - timedelta(hours=1)}
    )
    facts = records.record_qc(older)
    assert facts.qc is not None and facts.qc.verdict is QcVerdict.PASS  # a replay never wins
    assert records.get(uuid4()) is None


def test_sql_routes_are_matched_like_the_rules(engine: Engine) -> None:
    routes = SqlRoutes(engine)
    routes.put(Route("b", TENANT, MinQc.WARN, version="2"))
    routes.put(Route("a", TENANT, MinQc.PASS, stain="H&E"))
    routes.put(Route("c", "other", MinQc.PASS))
    assert routes.routes_for(TENANT, "h&e", None, "pass") == [RouteMatch("a"), RouteMatch("b", "2")]
    assert routes.routes_for(TENANT, "h&e", None, "warn") == [RouteMatch("b", "2")]
    assert routes.routes_for(TENANT, "h&e", None, "fail") == []


def test_a_card_is_read_with_its_digest_and_must_describe_its_place() -> None:
    store = MemoryStore()
    cards = StoreModelCards(store, "models")
    assert cards.card("grey", "1") is None
    store_card(store, model_card())
    stored = cards.card("grey", "1")
    assert stored is not None and stored.card.input.tile_size_px == 128
    assert len(stored.sha256) == 64
    store.objects[("models", "grey/2/card.json")] = model_card().model_dump_json().encode()
    with pytest.raises(InvalidModelCardError, match="describes grey version 1"):
        cards.card("grey", "2")
