from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from slidestream_contracts.tokens import (
    basic_password,
    bearer_token,
    secrets_equal,
    token_matches,
    token_sha256,
)
from slidestream_upload.domain.tokens import (
    UNKNOWN_TOKEN,
    new_token,
    parse_duration,
    plan_rotation,
    token_refusal,
)
from tests.support.secrets import spy_compare_digest

NOW = datetime(2026, 12, 12, 10, 0, tzinfo=UTC)


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


def test_secrets_are_compared_with_compare_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = spy_compare_digest(monkeypatch)
    token = new_token()

    assert token_matches(token, token_sha256(token))
    assert not token_matches(token, token_sha256(token + "x"))
    assert calls == [
        (token_sha256(token), token_sha256(token)),
        (token_sha256(token), token_sha256(token + "x")),
    ]


def test_a_secret_with_non_ascii_characters_is_compared_not_refused_with_an_error() -> None:
    # compare_digest raises TypeError on non-ASCII str; a header may carry any Latin-1 text.
    assert not secrets_equal("ssk_é", "ssk_e")
    assert secrets_equal("ssk_é", "ssk_é")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90d", timedelta(days=90)),
        ("24h", timedelta(hours=24)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("30m", timedelta(minutes=30)),
        ("45s", timedelta(seconds=45)),
        ("2w", timedelta(weeks=2)),
        (" 12H ", timedelta(hours=12)),
        ("0", timedelta(0)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "90", "d", "1y", "1.5d", "-1d", "1d 2h", "1dx"])
def test_malformed_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_a_token_without_expiry_never_expires() -> None:
    assert token_refusal(revoked_at=None, expires_at=None, now=NOW + timedelta(days=10_000)) is None


def test_an_expired_token_says_so_and_when() -> None:
    expires_at = NOW - timedelta(seconds=1)

    refusal = token_refusal(revoked_at=None, expires_at=expires_at, now=NOW)

    assert refusal is not None
    assert (refusal.status_code, refusal.reason) == (401, "token-expired")
    assert "expired at 2026-12-12T09:59:59Z" in refusal.message
    assert token_refusal(revoked_at=None, expires_at=NOW + timedelta(seconds=1), now=NOW) is None


def test_a_naive_expiry_from_sqlite_is_read_as_utc() -> None:
    naive = (NOW - timedelta(minutes=1)).replace(tzinfo=None)
    refusal = token_refusal(revoked_at=None, expires_at=naive, now=NOW)
    assert refusal is not None and refusal.reason == "token-expired"


def test_a_revoked_token_answers_like_an_unknown_one() -> None:
    assert token_refusal(revoked_at=NOW, expires_at=None, now=NOW) == UNKNOWN_TOKEN


def test_rotation_gives_the_old_token_the_grace_and_the_new_one_the_same_lifetime() -> None:
    created = NOW - timedelta(days=80)
    plan = plan_rotation(
        created_at=created,
        expires_at=created + timedelta(days=90),
        grace=timedelta(hours=24),
        now=NOW,
    )
    assert plan.old_expires_at == NOW + timedelta(hours=24)
    assert plan.new_expires_at == NOW + timedelta(days=90)


def test_rotation_never_lengthens_the_old_token_and_keeps_no_expiry_when_it_had_none() -> None:
    shortly = NOW + timedelta(hours=1)
    assert (
        plan_rotation(
            created_at=NOW, expires_at=shortly, grace=timedelta(days=7), now=NOW
        ).old_expires_at
        == shortly
    )
    unlimited = plan_rotation(created_at=NOW, expires_at=None, grace=timedelta(0), now=NOW)
    assert (unlimited.old_expires_at, unlimited.new_expires_at) == (NOW, None)
    chosen = plan_rotation(
        created_at=NOW,
        expires_at=None,
        grace=timedelta(hours=1),
        now=NOW,
        expires_in=timedelta(days=30),
    )
    assert chosen.new_expires_at == NOW + timedelta(days=30)
    with pytest.raises(ValueError, match="negative"):
        plan_rotation(created_at=NOW, expires_at=None, grace=timedelta(hours=-1), now=NOW)


def test_basic_password_parsing_as_tusd_sends_it() -> None:
    # Go's net/http turns the hook URL's user info into this header (RFC 7617).
    assert basic_password("Basic dHVzZDpzM2NyM3Q=") == "s3cr3t"  # tusd:s3cr3t
    assert basic_password("basic dHVzZDpzM2NyM3Q= ") == "s3cr3t"
    assert basic_password("Basic dHVzZDphOmI=") == "a:b"  # tusd:a:b, the first colon splits
    assert basic_password("Basic dHVzZA==") is None  # "tusd": no colon, no password
    assert basic_password("Basic not base64") is None
    assert basic_password("Bearer dHVzZDpzM2NyM3Q=") is None
    assert basic_password(None) is None
