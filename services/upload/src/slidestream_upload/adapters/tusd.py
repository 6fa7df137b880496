"""tusd's side of the control path: its HTTP hook protocol and its termination endpoint.

Hook requests and responses follow tusd v2's HTTP hook format (``docs/hooks.md`` of tusd 2.x):
``{"Type": "pre-create", "Event": {"Upload": {...}, "HTTPRequest": {...}}}`` in,
``{"HTTPResponse": {...}, "RejectUpload": bool, "ChangeFileInfo": {...}}`` out. These models
ignore fields we do not use: the format is tusd's, not ours, and grows between versions.
"""

from __future__ import annotations

import json

import httpx
from pydantic import BaseModel, ConfigDict, Field

TUS_VERSION = "1.0.0"
TERMINATE_TIMEOUT_S = 10.0


class _TusdModel(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class HookUpload(_TusdModel):
    id: str = Field(default="", alias="ID")
    size: int = Field(default=0, alias="Size")
    size_is_deferred: bool = Field(default=False, alias="SizeIsDeferred")
    offset: int = Field(default=0, alias="Offset")
    metadata: dict[str, str] = Field(default_factory=dict, alias="MetaData")
    storage: dict[str, str] | None = Field(default=None, alias="Storage")


class HookHttpRequest(_TusdModel):
    method: str = Field(default="", alias="Method")
    uri: str = Field(default="", alias="URI")
    header: dict[str, list[str]] = Field(default_factory=dict, alias="Header")

    def first(self, name: str) -> str | None:
        for key, values in self.header.items():
            if key.lower() == name.lower() and values:
                return values[0]
        return None


class HookEvent(_TusdModel):
    upload: HookUpload = Field(alias="Upload")
    http_request: HookHttpRequest = Field(default_factory=HookHttpRequest, alias="HTTPRequest")


class HookRequest(_TusdModel):
    type: str = Field(alias="Type")
    event: HookEvent = Field(alias="Event")


def hook_response(
    *,
    reject: bool = False,
    reject_termination: bool = False,
    status_code: int | None = None,
    body: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    change_id: str | None = None,
    change_metadata: dict[str, str] | None = None,
) -> dict[str, object]:
    """A tusd hook response (JSON object) in tusd v2's field names."""
    # tusd reads RejectUpload only from pre-create and RejectTermination only from pre-terminate.
    response: dict[str, object] = {"RejectUpload": reject, "RejectTermination": reject_termination}
    http: dict[str, object] = {}
    if status_code is not None:
        http["StatusCode"] = status_code
    if body is not None:
        http["Body"] = json.dumps(body)
        http["Header"] = {"Content-Type": "application/json", **(headers or {})}
    elif headers:
        http["Header"] = headers
    if http:
        response["HTTPResponse"] = http
    changes: dict[str, object] = {}
    if change_id is not None:
        changes["ID"] = change_id
    if change_metadata is not None:
        changes["MetaData"] = change_metadata
    if changes:
        response["ChangeFileInfo"] = changes
    return response


def object_key_of(tus_id: str) -> str:
    """tusd's S3 store names uploads ``<object key>+<multipart upload id>``."""
    return tus_id.split("+", 1)[0]


class TusdAdmin:
    """Asks tusd to terminate an upload (tus 1.0 termination extension: ``DELETE``)."""

    def __init__(self, tus_url: str) -> None:
        self._tus_url = tus_url.rstrip("/") + "/"

    async def terminate(self, tus_id: str, *, token: str) -> bool:
        """Terminate ``tus_id``; ``token`` is what the pre-terminate hook accepts from us."""
        async with httpx.AsyncClient(timeout=TERMINATE_TIMEOUT_S) as client:
            response = await client.delete(
                self._tus_url + tus_id,
                headers={"Tus-Resumable": TUS_VERSION, "Authorization": f"Bearer {token}"},
            )
        return response.status_code in (204, 404, 410)
