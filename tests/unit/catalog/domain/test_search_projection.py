"""The search projection's rules: per-stage monotonic, idempotent, out-of-order, one tenant."""

from __future__ import annotations

import json
from uuid import uuid4

import pytest

from slidestream_catalog.domain.search_projection import (
    MAX_TEXT_CHARS,
    SlideSearchRecord,
    project,
    search_text,
)
from slidestream_contracts.events import SlideEvent, SlideFactsV1
from slidestream_contracts.lifecycle import TenantMismatchError
from slidestream_contracts.states import SlideState, Step
from tests.support.catalog import SlideEvents, at, ref


def replay(events: list[SlideEvent]) -> SlideSearchRecord:
    record: SlideSearchRecord | None = None
    for event in events:
        record = project(record, event)
    assert record is not None
    return record


def test_declared_facts_fill_what_the_file_leaves_out() -> None:
    """Issue 18: a generic TIFF without spacing is searchable by the partner's declared one;
    the file's own facts win where it states them."""
    slide = SlideEvents("acme")
    declared = SlideFactsV1(mpp_um=0.5, objective_power=20.0, scanner="Scanner X")
    silent = slide.deidentified(1).model_copy(
        update={"mpp_x": None, "mpp_y": None, "objective_power": None, "declared": declared}
    )
    fields = replay([slide.uploaded(0), silent]).slide
    assert (fields.mpp_um, fields.objective_power, fields.scanner_model) == (
        0.5,
        20.0,
        "Scanner X",
    )
    stated = slide.deidentified(1).model_copy(update={"declared": declared})
    fields = replay([slide.uploaded(0), stated]).slide
    assert (fields.mpp_um, fields.objective_power) == (0.25, 40.0)


def test_a_whole_pipeline_fills_every_stage() -> None:
    slide = SlideEvents("acme")
    events = slide.history()
    embeddings = ref("tissue-classifier/1/embeddings.npz", 90000)
    events[8] = slide.inferred(4, embeddings=embeddings)  # a run that also embeds its tiles
    record = replay(events)
    fields = record.slide
    assert (fields.tenant, fields.project, fields.organ, fields.stain) == (
        "acme",
        "crc-cohort",
        "colon",
        "H&E",
    )
    assert (fields.container_format, fields.original_bytes, fields.uploaded_at) == (
        "tiff",
        5000,
        at(0),
    )
    assert (fields.case_id, fields.specimen_id, fields.patient_id) == (
        "case-1a2b",
        "spec-3c4d",
        "pat-5e6f",
    )
    assert (fields.scanner_vendor, fields.scanner_model, fields.format) == (
        "aperio",
        None,
        "aperio-svs",
    )
    assert (fields.width_px, fields.height_px, fields.mpp_um, fields.objective_power) == (
        40000,
        30000,
        0.25,
        40.0,
    )
    assert fields.deidentified_bytes == 3500
    assert (fields.level_count, fields.converted_bytes) == (2, 3000)
    assert json.loads(fields.levels_json)[1] == {
        "index": 1,
        "width_px": 10000,
        "height_px": 7500,
        "tile_size_px": 256,
    }
    images = json.loads(fields.images_json)
    assert [image["key"] for image in images["dicom"]] == [
        slide.key("level-0.dcm"),
        slide.key("level-1.dcm"),
    ]
    assert images["tiff"]["key"] == slide.key("slide.tiff")
    assert (fields.qc_verdict, json.loads(fields.qc_reasons_json)) == ("warn", ["blurry-region"])
    assert [(m.name, m.value, m.verdict) for m in record.measures] == [
        ("blur_fraction", 0.12, "warn"),
        ("tissue_fraction", 0.4, "pass"),
    ]
    [run] = record.runs
    assert (run.model, run.model_version, run.tile_count, run.inferred_at) == (
        "tissue-classifier",
        "1",
        1200,
        at(4),
    )
    assert run.scores == (("fraction:stroma", 0.5), ("fraction:tumour", 0.35))
    assert json.loads(run.embeddings_json or "")["key"] == "tissue-classifier/1/embeddings.npz"
    assert (fields.tile_count, fields.inferred_at) == (1200, at(4))
    assert (fields.state, fields.step, fields.status_at) == ("inferred", "inference", at(4))
    assert fields.updated_at == at(4)


def test_the_same_event_twice_changes_nothing() -> None:
    slide = SlideEvents("acme")
    record = replay(slide.history())
    for event in slide.history():
        assert project(record, event) is record


def test_stages_in_any_order_give_the_same_record() -> None:
    slide = SlideEvents("acme")
    in_order = replay(slide.history())
    assert replay(list(reversed(slide.history()))) == in_order


def test_qc_before_upload_creates_the_record_with_the_events_tenant() -> None:
    slide = SlideEvents("acme")
    record = project(None, slide.qc(3))
    assert (record.slide.tenant, record.slide.qc_verdict, record.slide.uploaded_at) == (
        "acme",
        "warn",
        None,
    )
    assert record.slide.state is None
    later = project(record, slide.uploaded(0))
    assert (later.slide.organ, later.slide.qc_verdict, later.slide.updated_at) == (
        "colon",
        "warn",
        at(3),
    )


def test_an_older_event_never_overwrites_its_stage_but_fills_others() -> None:
    slide = SlideEvents("acme")
    record = project(None, slide.qc(5, verdict="fail", blur=0.9, reasons=("blurry",)))
    assert project(record, slide.qc(3, verdict="pass", blur=0.01, reasons=())) is record
    newer = project(record, slide.qc(7, verdict="pass", blur=0.01, reasons=()))
    assert (newer.slide.qc_verdict, newer.slide.qc_at) == ("pass", at(7))
    assert dict((m.name, m.value) for m in newer.measures)["blur_fraction"] == 0.01
    # An old stage of another kind is no older than *its* stage: it applies.
    with_upload = project(newer, slide.uploaded(0, organ="lung"))
    assert (with_upload.slide.organ, with_upload.slide.qc_at) == ("lung", at(7))


def test_a_newer_run_replaces_the_models_outputs_and_other_models_stay() -> None:
    slide = SlideEvents("acme")
    record = replay(
        [
            slide.inferred(4, summary={"fraction:tumour": 0.3, "fraction:necrosis": 0.1}),
            slide.inferred(5, model="stain-net", summary={"mean:eosin": 0.7}),
            slide.inferred(6, version="2", summary={"fraction:tumour": 0.4}),
            slide.inferred(3, version="0", summary={"fraction:old": 1.0}),  # late and older
        ]
    )
    runs = {run.model: run for run in record.runs}
    assert runs["tissue-classifier"].model_version == "2"
    assert runs["tissue-classifier"].scores == (("fraction:tumour", 0.4),)
    assert runs["stain-net"].scores == (("mean:eosin", 0.7),)
    assert (record.slide.inferred_at, [run.model for run in record.runs]) == (
        at(6),
        ["stain-net", "tissue-classifier"],
    )


def test_another_tenants_event_for_the_slide_is_refused() -> None:
    slide_id = uuid4()
    record = project(None, SlideEvents("acme", slide_id).uploaded(0))
    with pytest.raises(TenantMismatchError):
        project(record, SlideEvents("globex", slide_id).qc(1))


def test_state_follows_the_lifecycle_rules_rejections_included() -> None:
    slide = SlideEvents("acme")
    record = replay(
        [
            slide.status(0, SlideState.UPLOADED, Step.UPLOAD),
            slide.rejected(1),
            # A later success of another step cannot resurrect a rejected slide.
            slide.status(2, SlideState.CONVERTED, Step.CONVERT),
        ]
    )
    assert (record.slide.state, record.slide.step, record.slide.reason) == (
        "rejected",
        "deid",
        "phi-residual",
    )
    assert (record.slide.detail, record.slide.status_at, record.slide.updated_at) == (
        "label image",
        at(1),
        at(2),
    )
    older = project(None, slide.status(5, SlideState.QC_PASSED, Step.QC))
    assert project(older, slide.status(4, SlideState.CONVERTED, Step.CONVERT)).slide.state == (
        "qc_passed"
    )


def test_the_text_document_holds_names_and_descriptions_once() -> None:
    slide = SlideEvents("acme")
    record = replay(
        [*slide.history(), slide.status(5, SlideState.INDEXED, Step.SEARCH, "cohort review")]
    )
    words = record.slide.text.split(" ")
    for expected in (
        "crc-cohort",
        "human",
        "colon",
        "H&E",
        "aperio",
        "aperio-svs",
        "tiff",
        "case-1a2b",
        "spec-3c4d",
        "pat-5e6f",
        "blurry-region",
        "tissue-classifier",
        "tumour",
        "stroma",
    ):
        assert expected in words
    assert "cohort review" in record.slide.text  # the status detail, as written
    # Two models with the same label name it once.
    twice = project(record, slide.inferred(5, model="other-model"))
    assert twice.slide.text.split(" ").count("tumour") == 1
    assert "0.35" not in record.slide.text and "acme" not in words
    assert record.slide.text == search_text(record)


def test_the_text_document_is_cut_at_the_column_length() -> None:
    slide = SlideEvents("acme")
    labels = {f"fraction:label{i:04d}-{'x' * 40}": 0.1 for i in range(200)}
    record = project(None, slide.inferred(1, summary=labels))
    assert len(record.slide.text) == MAX_TEXT_CHARS


def test_a_measure_named_twice_keeps_the_last_value() -> None:
    slide = SlideEvents("acme")
    event = slide.qc(1)
    again = event.measures[0].model_copy(update={"value": 0.9})
    twice = event.model_copy(update={"measures": (*event.measures, again)})
    measures = {m.name: m.value for m in project(None, twice).measures}
    assert measures == {"blur_fraction": 0.12, "tissue_fraction": 0.9}
