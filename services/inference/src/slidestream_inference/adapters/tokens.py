"""Who may call the models API: bearer tokens from ``settings.api_tokens_file``.

The file is a JSON list of ``{"name", "sha256", "scopes"}``; it holds only the SHA-256 of each
token. Tokens are long random secrets, so a plain SHA-256 is a sufficient at-rest hash (nothing
to stretch against guessing); the presented token's hash is compared with every listed one in
constant time (``secrets_equal``, ``hmac.compare_digest``). The file is re-read when its
modification time changes, so a rotated Kubernetes secret takes effect without a restart; a
file that no longer parses keeps the tokens read before (and says so in the log) rather than
locking everyone out.

``models:read`` lists and inspects; ``models:write`` pushes, loads, unloads, routes and
backfills; ``models:embed`` embeds an image patch with a loaded model (the catalog's similarity
search). None implies another: a token gets exactly the scopes its entry lists.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints, TypeAdapter, ValidationError

from slidestream_contracts.tokens import bearer_token, secrets_equal, token_sha256

logger = logging.getLogger(__name__)


class Scope(StrEnum):
    MODELS_READ = "models:read"
    MODELS_WRITE = "models:write"
    MODELS_EMBED = "models:embed"


class TokenEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    """Who holds the token (recorded as ``requested_by``; never the token itself)."""
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    scopes: tuple[Scope, ...]


_ENTRIES = TypeAdapter(list[TokenEntry])


@dataclass(frozen=True, slots=True)
class Caller:
    name: str
    scopes: frozenset[Scope]


class UnauthenticatedError(Exception):
    """No token, or one the file does not list (HTTP 401)."""


class ForbiddenError(Exception):
    """A known token without the scope the route needs (HTTP 403)."""


def read_token_file(path: Path) -> dict[str, Caller]:
    """The callers of ``path`` by token hash; raises ``ValueError`` when it does not parse."""
    try:
        entries = _ENTRIES.validate_json(path.read_bytes())
    except ValidationError as error:
        raise ValueError(f"{path}: not a list of token entries: {error}") from error
    return {entry.sha256: Caller(entry.name, frozenset(entry.scopes)) for entry in entries}


class TokenFile:
    """The tokens of one file (none when ``path`` is ``None``: every call is refused)."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._mtime_ns: int | None = None
        self._callers: dict[str, Caller] = {}
        if path is not None:
            self._mtime_ns = path.stat().st_mtime_ns
            self._callers = read_token_file(path)

    def _current(self) -> dict[str, Caller]:
        if self._path is None:
            return {}
        with self._lock:
            try:
                mtime_ns = self._path.stat().st_mtime_ns
                if mtime_ns != self._mtime_ns:
                    self._callers = read_token_file(self._path)
                    self._mtime_ns = mtime_ns
            except (OSError, ValueError):
                logger.exception("api tokens file unreadable; keeping the tokens read before")
            return self._callers

    def _caller(self, token: str) -> Caller | None:
        """The entry whose hash is the token's. Every entry is compared, in constant time, so
        neither the answer's timing nor an entry's position tells how close a guess came."""
        digest = token_sha256(token)
        found: Caller | None = None
        for stored, caller in self._current().items():
            if secrets_equal(digest, stored):
                found = caller
        return found

    def authorise(self, authorization: str | None, scope: Scope) -> Caller:
        """The caller behind an ``Authorization`` header, if it holds ``scope``."""
        token = bearer_token(authorization)
        caller = self._caller(token) if token else None
        if caller is None:
            raise UnauthenticatedError("missing or unknown bearer token")
        if scope not in caller.scopes:
            raise ForbiddenError(f"token {caller.name!r} lacks the scope {scope.value}")
        return caller
