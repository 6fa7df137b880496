from __future__ import annotations

from slidestream_contracts.tokens import basic_password, bearer_token, token_sha256
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


def test_basic_password_parsing_as_tusd_sends_it() -> None:
    # Go's net/http turns the hook URL's user info into this header (RFC 7617).
    assert basic_password("Basic dHVzZDpzM2NyM3Q=") == "s3cr3t"  # tusd:s3cr3t
    assert basic_password("basic dHVzZDpzM2NyM3Q= ") == "s3cr3t"
    assert basic_password("Basic dHVzZDphOmI=") == "a:b"  # tusd:a:b, the first colon splits
    assert basic_password("Basic dHVzZA==") is None  # "tusd": no colon, no password
    assert basic_password("Basic not base64") is None
    assert basic_password("Bearer dHVzZDpzM2NyM3Q=") is None
    assert basic_password(None) is None
