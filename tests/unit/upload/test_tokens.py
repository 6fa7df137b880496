from __future__ import annotations

from slidestream_contracts.tokens import bearer_token, token_sha256
from slidestream_upload.domain.tokens import new_token


def test_tokens_are_random_prefixed_and_hashed() -> None:
    first, second = new_token(), new_token()
    assert first != second
    assert first.startswith("ssk_")
    assert len(token_sha256(first)) == 64
    assert token_sha256(first) != first


def test_bearer_token_parsing() -> None:
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer   abc ") == "abc"
    assert bearer_token("Basic abc") is None
    assert bearer_token("Bearer ") is None
    assert bearer_token(None) is None
