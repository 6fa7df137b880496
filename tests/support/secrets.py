"""Seeing that a secret was compared in constant time: a spy on ``hmac.compare_digest``, through
which ``slidestream_contracts.tokens.secrets_equal`` makes every such comparison."""

from __future__ import annotations

import hmac

import pytest


def spy_compare_digest(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """The pairs ``hmac.compare_digest`` is called with from now on (decoded to text), in order;
    the real function still answers."""
    calls: list[tuple[str, str]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:  # secrets_equal always passes UTF-8 bytes
        calls.append((a.decode("utf-8"), b.decode("utf-8")))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    return calls
