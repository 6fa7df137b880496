"""The pre-create hook and the declared sha256: partners' uploads must declare it (Upload-Metadata)
unless the setting says otherwise; the refusal says what to send."""

from __future__ import annotations

import hashlib
import json

from slidestream_contracts.reasons import REASONS
from slidestream_upload.adapters.repository import UploadRepository
from slidestream_upload.adapters.tusd import HookEvent
from slidestream_upload.settings import UploadSettings
from tests.support.upload_workflow import upload_harness

SHA256 = hashlib.sha256(b"a slide").hexdigest()


def creation(token: str, **metadata: str) -> HookEvent:
    return HookEvent.model_validate(
        {
            "Upload": {"Size": 1000, "MetaData": {"filename": "a.svs", **metadata}},
            "HTTPRequest": {"Method": "POST", "Header": {"Authorization": [f"Bearer {token}"]}},
        }
    )


def test_the_setting_defaults_to_required() -> None:
    assert UploadSettings().require_declared_sha256 is True


async def test_an_upload_without_a_sha256_is_refused_with_a_reason_a_partner_can_act_on(
    uploads: UploadRepository,
) -> None:
    harness = upload_harness(uploads)
    token = uploads.issue_token("acme").token

    answer = await harness.workflow.pre_create(creation(token))

    assert answer["RejectUpload"] is True
    response = answer["HTTPResponse"]
    assert isinstance(response, dict)
    assert response["StatusCode"] == 400
    body = json.loads(response["Body"])
    assert body["reason"] == "checksum-required"
    assert "sha256" in body["message"]
    assert "checksum-required" in REASONS  # the CLI explains it in words
    assert uploads.quota("acme")[1] == 0  # nothing was recorded


async def test_an_upload_declaring_its_sha256_is_admitted(uploads: UploadRepository) -> None:
    harness = upload_harness(uploads)
    token = uploads.issue_token("acme").token

    answer = await harness.workflow.pre_create(creation(token, sha256=SHA256))

    assert answer["RejectUpload"] is False
    change = answer["ChangeFileInfo"]
    assert isinstance(change, dict) and str(change["ID"]).startswith("acme/")


async def test_turned_off_an_upload_without_a_sha256_is_admitted(
    uploads: UploadRepository,
) -> None:
    harness = upload_harness(uploads, require_declared_sha256=False)
    token = uploads.issue_token("acme").token

    answer = await harness.workflow.pre_create(creation(token))

    assert answer["RejectUpload"] is False


async def test_a_spacing_in_a_wrong_unit_is_refused_naming_the_field(
    uploads: UploadRepository,
) -> None:
    harness = upload_harness(uploads)
    token = uploads.issue_token("acme").token
    meta = json.dumps({"mpp_um": "250 nm", "study": "S1"})

    answer = await harness.workflow.pre_create(creation(token, sha256=SHA256, meta=meta))

    assert answer["RejectUpload"] is True
    response = answer["HTTPResponse"]
    assert isinstance(response, dict) and response["StatusCode"] == 422
    body = json.loads(response["Body"])
    assert (body["reason"], body["field"]) == ("invalid-slide-facts", "mpp_um")
    assert "unit 'nm' is not accepted" in body["message"]
    assert "invalid-slide-facts" in REASONS
    assert uploads.quota("acme")[1] == 0


async def test_declared_slide_facts_are_admitted(uploads: UploadRepository) -> None:
    harness = upload_harness(uploads)
    token = uploads.issue_token("acme").token
    meta = json.dumps({"mpp_um": "0.25", "objective_power": "40x"})

    answer = await harness.workflow.pre_create(creation(token, sha256=SHA256, meta=meta))

    assert answer["RejectUpload"] is False
