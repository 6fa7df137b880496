"""Embedding an image patch with a model, through the inference service's models API (which runs
it on Triton with the model's own preprocessing): ``POST /v1/models/{model}/embed``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import httpx

from slidestream_platform.errors import DependencyDownError


@dataclass(frozen=True, slots=True)
class Embedding:
    model: str
    version: str
    vector: tuple[float, ...]


class EmbedRefusedError(ValueError):
    """The models API refused the patch or the model (4xx): the caller's input is at fault."""

    def __init__(self, status: int, field: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.field = field


class Embedder(Protocol):
    async def embed(
        self, model: str, image: bytes, content_type: str, version: str | None = None
    ) -> Embedding: ...


class HttpEmbedder:
    """:class:`Embedder` over the inference service's HTTP API (bearer token from a file)."""

    def __init__(self, base_url: str, token_file: Path | None, client: httpx.AsyncClient) -> None:
        self._base_url = base_url.rstrip("/")
        self._token_file = token_file
        self._client = client

    async def embed(
        self, model: str, image: bytes, content_type: str, version: str | None = None
    ) -> Embedding:
        headers = {}
        if self._token_file is not None:
            token = self._token_file.read_text(encoding="utf-8").strip()
            headers["Authorization"] = f"Bearer {token}"
        url = f"{self._base_url}/v1/models/{model}/embed"
        try:
            answer = await self._client.post(
                url,
                files={"image": ("patch", image, content_type)},
                data={"version": version} if version is not None else {},
                headers=headers,
            )
        except httpx.HTTPError as error:
            raise DependencyDownError(f"models API: {error}") from error
        if answer.status_code in (404, 413, 415, 422):
            field = "model" if answer.status_code == 404 else "image"
            raise EmbedRefusedError(answer.status_code, field, _detail(answer))
        if answer.status_code != 200:
            raise DependencyDownError(
                f"models API answered {answer.status_code}: {_detail(answer)}"
            )
        body = answer.json()
        vector = tuple(float(value) for value in body["embedding"])
        if len(vector) != int(body["dimension"]):
            raise DependencyDownError("models API: embedding length differs from its dimension")
        return Embedding(str(body["model"]), str(body["version"]), vector)


def _detail(answer: httpx.Response) -> str:
    try:
        return str(answer.json().get("detail", answer.text))
    except ValueError:
        return answer.text[:500]
