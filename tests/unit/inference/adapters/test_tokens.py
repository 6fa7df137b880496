"""Bearer tokens of the models API: hashes in a file, scopes, 401 versus 403, rotation."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from slidestream_contracts.tokens import token_sha256
from slidestream_inference.adapters.tokens import (
    ForbiddenError,
    Scope,
    TokenFile,
    UnauthenticatedError,
)
from tests.support.secrets import spy_compare_digest

READER, WRITER = "ssk_reader-secret", "ssk_writer-secret"


def write_tokens(path: Path, entries: dict[str, tuple[str, list[str]]], mtime_ns: int) -> Path:
    path.write_text(
        json.dumps(
            [
                {"name": name, "sha256": token_sha256(token), "scopes": scopes}
                for name, (token, scopes) in entries.items()
            ]
        )
    )
    os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    return write_tokens(
        tmp_path / "tokens.json",
        {
            "curator": (READER, ["models:read"]),
            "ai-team": (WRITER, ["models:read", "models:write"]),
        },
        mtime_ns=1_000_000_000,
    )


def test_a_token_with_the_scope_is_its_holder(token_file: Path) -> None:
    tokens = TokenFile(token_file)

    caller = tokens.authorise(f"Bearer {WRITER}", Scope.MODELS_WRITE)

    assert caller.name == "ai-team"
    assert tokens.authorise(f"bearer  {READER} ", Scope.MODELS_READ).name == "curator"


@pytest.mark.parametrize(
    "header", [None, "", "Bearer", "Basic dXNlcjpwYXNz", "Bearer ssk_unknown", f"Token {READER}"]
)
def test_a_missing_or_unknown_token_is_unauthenticated(
    token_file: Path, header: str | None
) -> None:
    with pytest.raises(UnauthenticatedError):
        TokenFile(token_file).authorise(header, Scope.MODELS_READ)


def test_a_known_token_without_the_scope_is_forbidden(token_file: Path) -> None:
    with pytest.raises(ForbiddenError, match="models:write"):
        TokenFile(token_file).authorise(f"Bearer {READER}", Scope.MODELS_WRITE)


def test_the_hash_is_compared_with_every_entry_in_constant_time(
    token_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokens = TokenFile(token_file)
    calls = spy_compare_digest(monkeypatch)

    assert tokens.authorise(f"Bearer {READER}", Scope.MODELS_READ).name == "curator"

    digest = token_sha256(READER)
    assert calls == [(digest, token_sha256(READER)), (digest, token_sha256(WRITER))]


def test_the_file_holds_only_hashes(token_file: Path) -> None:
    text = token_file.read_text()

    assert READER not in text
    assert token_sha256(READER) in text


def test_a_rotated_file_takes_effect_and_a_broken_one_keeps_the_old_tokens(
    token_file: Path,
) -> None:
    tokens = TokenFile(token_file)
    write_tokens(token_file, {"curator": (READER, ["models:read", "models:write"])}, 2 * 10**9)

    assert tokens.authorise(f"Bearer {READER}", Scope.MODELS_WRITE).name == "curator"
    with pytest.raises(UnauthenticatedError):
        tokens.authorise(f"Bearer {WRITER}", Scope.MODELS_READ)

    token_file.write_text("[{")
    os.utime(token_file, ns=(3 * 10**9, 3 * 10**9))
    assert tokens.authorise(f"Bearer {READER}", Scope.MODELS_WRITE).name == "curator"


def test_no_file_refuses_everyone() -> None:
    with pytest.raises(UnauthenticatedError):
        TokenFile(None).authorise(f"Bearer {READER}", Scope.MODELS_READ)


def test_an_invalid_file_stops_the_start(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps([{"name": "x", "sha256": "short", "scopes": ["models:read"]}]))

    with pytest.raises(ValueError, match="token entries"):
        TokenFile(path)
