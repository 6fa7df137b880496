"""The models SDK: push, load, route and backfill models through the inference service.

    from slidestream_client.model_client import ModelsClient

    with ModelsClient("http://127.0.0.1:8095", token) as models:
        models.push_path("tissue.pt", name="tissue", version="1")
        models.load("tissue")
        models.set_route("tissue", tenant="acme", min_qc="warn")

Every method raises a :class:`~slidestream_client.errors.SlidestreamError` subclass on failure;
:meth:`ModelsClient.push_path` raises :class:`~slidestream_modelrepo.ModelPackageError` for a
model that is invalid before anything is sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import httpx

from slidestream_client.api_client import TokenApiClient
from slidestream_client.errors import (
    ModelRefusedError,
    PermissionDeniedError,
    VersionExistsError,
    error_from_response,
    problems_from_response,
)
from slidestream_client.model_push import prepare_push
from slidestream_client.model_shapes import (
    BackfillProgress,
    BackfillStarted,
    LoadResult,
    ModelDetail,
    ModelList,
    PushedModel,
    Route,
    RouteList,
)
from slidestream_contracts.model_card import ModelCardV1

LOAD_TIMEOUT_S = 600.0
"""Loading runs Triton's load and a canary request: a large model takes minutes to load."""
PUSH_TIMEOUT_S = 900.0
"""A push sends the whole model in one request."""
MAX_BACKFILL_POLL_INTERVAL_S = 10.0

MinQc = Literal["pass", "warn"]


class ModelsClient(TokenApiClient):
    """A connection to the models API; the token needs ``models:read`` (and ``models:write``
    to push, load, unload, route or backfill)."""

    def _request(
        self,
        method: str,
        path: str,
        *,
        expect: Sequence[int] = (httpx.codes.OK,),
        timeout_s: float | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        if timeout_s is not None:
            kwargs["timeout"] = timeout_s
        response = self._send(method, path, **kwargs)
        if response.status_code in expect:
            return response
        refused = error_from_response(response)
        status, reason, message = refused.status_code, refused.reason, refused.message
        if status == httpx.codes.CONFLICT:
            raise VersionExistsError(status, reason, message)
        if status == httpx.codes.FORBIDDEN:
            raise PermissionDeniedError(status, reason, message)
        if status == httpx.codes.UNPROCESSABLE_ENTITY:
            raise ModelRefusedError(status, reason, message, problems_from_response(response))
        raise refused

    # -- models ----------------------------------------------------------------------------------
    def push(self, card: ModelCardV1, archive: bytes) -> PushedModel:
        """Send a version: ``archive`` is :func:`slidestream_modelrepo.pack_upload`'s."""
        response = self._request(
            "POST",
            f"/v1/models/{_segment(card.name)}/versions/{_segment(card.version)}",
            expect=(httpx.codes.CREATED,),
            timeout_s=PUSH_TIMEOUT_S,
            data={"card": card.model_dump_json()},
            files={"archive": (f"{card.name}-{card.version}.tar.gz", archive, "application/gzip")},
        )
        return PushedModel.model_validate_json(response.content)

    def push_path(
        self,
        path: Path | str,
        *,
        name: str | None = None,
        version: str | None = None,
        card_path: Path | str | None = None,
    ) -> PushedModel:
        """Validate a TorchScript file or Triton directory with its card, then push it."""
        prepared = prepare_push(
            Path(path),
            name=name,
            version=version,
            card_path=Path(card_path) if card_path is not None else None,
        )
        return self.push(prepared.card, prepared.archive())

    def models(self) -> ModelList:
        return ModelList.model_validate_json(self._request("GET", "/v1/models").content)

    def model(self, name: str) -> ModelDetail:
        """Versions with their state and device, Triton's statistics, the load time."""
        response = self._request("GET", f"/v1/models/{_segment(name)}")
        return ModelDetail.model_validate_json(response.content)

    def load(self, name: str) -> LoadResult:
        """Load in Triton; returns once a canary request gave outputs of the declared shapes
        (:class:`ModelRefusedError` when it did not: the model is then unloaded)."""
        response = self._request(
            "POST", f"/v1/models/{_segment(name)}/load", timeout_s=LOAD_TIMEOUT_S
        )
        return LoadResult.model_validate_json(response.content)

    def unload(self, name: str) -> LoadResult:
        response = self._request(
            "POST", f"/v1/models/{_segment(name)}/unload", timeout_s=LOAD_TIMEOUT_S
        )
        return LoadResult.model_validate_json(response.content)

    # -- routes ----------------------------------------------------------------------------------
    def set_route(
        self,
        name: str,
        *,
        tenant: str,
        min_qc: MinQc,
        project: str | None = None,
        stain: str | None = None,
        version: str | None = None,
    ) -> Route:
        """Run ``name`` on the tenant's slides (of ``project`` and ``stain`` when given) whose QC
        verdict is pass (``min_qc="pass"``) or pass or warn (``"warn"``)."""
        body = {
            "tenant": tenant,
            "project": project,
            "stain": stain,
            "min_qc": min_qc,
            "version": version,
        }
        response = self._request(
            "PUT",
            f"/v1/routes/{_segment(name)}",
            expect=(httpx.codes.OK, httpx.codes.CREATED, httpx.codes.NO_CONTENT),
            json=body,
        )
        answer = response.json() if response.content else {}
        return Route.model_validate({"name": name, **body, **answer})

    def routes(self) -> RouteList:
        return RouteList.model_validate_json(self._request("GET", "/v1/routes").content)

    def delete_route(self, name: str, *, tenant: str) -> None:
        self._request(
            "DELETE",
            f"/v1/routes/{_segment(name)}",
            expect=(httpx.codes.OK, httpx.codes.NO_CONTENT),
            params={"tenant": tenant},
        )

    # -- backfill --------------------------------------------------------------------------------
    def backfill(
        self,
        name: str,
        *,
        since: datetime | None = None,
        slides: Sequence[str] | None = None,
        version: str | None = None,
    ) -> BackfillStarted:
        """Request a run of ``name`` on slides already analysed by QC: those since ``since``,
        or the listed ``slides``."""
        if (since is None) == (slides is None):
            raise ValueError("give either since or slides")
        body = {
            "since": since.isoformat() if since is not None else None,
            "slides": list(slides) if slides is not None else None,
            "version": version,
        }
        response = self._request(
            "POST", f"/v1/models/{_segment(name)}/backfill", expect=(202,), json=body
        )
        return BackfillStarted.model_validate_json(response.content)

    def backfill_progress(self, name: str, backfill_id: str) -> BackfillProgress:
        response = self._request(
            "GET", f"/v1/models/{_segment(name)}/backfill/{_segment(backfill_id)}"
        )
        return BackfillProgress.model_validate_json(response.content)

    def wait_backfill(
        self,
        name: str,
        backfill_id: str,
        *,
        timeout_s: float,
        poll_interval_s: float = 2.0,
        on_progress: Callable[[BackfillProgress], None] = lambda _progress: None,
    ) -> BackfillProgress:
        """Poll until every requested slide is done or failed, or ``timeout_s`` passed; the
        last progress seen either way (check :attr:`BackfillProgress.finished`)."""
        deadline = time.monotonic() + timeout_s
        interval_s = poll_interval_s
        while True:
            progress = self.backfill_progress(name, backfill_id)
            on_progress(progress)
            remaining_s = deadline - time.monotonic()
            if progress.finished or remaining_s <= 0:
                return progress
            time.sleep(min(interval_s, remaining_s))
            interval_s = min(interval_s * 1.5, max(poll_interval_s, MAX_BACKFILL_POLL_INTERVAL_S))


def _segment(value: str) -> str:
    return quote(value, safe="")
