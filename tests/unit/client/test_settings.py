"""Where the CLI finds its endpoints: the environment first, then the local stack's stack.env."""

from __future__ import annotations

from pathlib import Path

import pytest

from slidestream_client.settings import DEFAULT_SEARCH_API, ClientSettings, find_stack_env

STACK_API = "http://127.0.0.1:8090"


@pytest.fixture
def checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("SLIDESTREAM_API", "UPLOAD_API", "SEARCH_API", "SLIDESTREAM_SEARCH_API"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / ".local").mkdir()
    (tmp_path / ".local" / "stack.env").write_text(
        f"# Written by `slidestream stack up`\nUPLOAD_API={STACK_API}\n"
        "SEARCH_API=http://127.0.0.1:9999\nKAFKA_BOOTSTRAP=127.0.0.1:19092\n",
        encoding="utf-8",
    )
    (tmp_path / "a" / "b").mkdir(parents=True)
    return tmp_path


def test_the_nearest_stack_env_above_is_found(checkout: Path) -> None:
    assert find_stack_env(checkout / "a" / "b") == checkout / ".local" / "stack.env"


def test_no_stack_env_outside_a_checkout(tmp_path: Path) -> None:
    assert find_stack_env(tmp_path) is None


def test_stack_env_names_the_apis(checkout: Path) -> None:
    settings = ClientSettings.load(checkout / "a")
    assert settings.api == STACK_API
    assert settings.search_api == "http://127.0.0.1:9999"


def test_the_environment_wins_over_stack_env(
    checkout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLIDESTREAM_API", "https://upload.example.org")
    assert ClientSettings.load(checkout).api == "https://upload.example.org"


def test_upload_api_is_accepted_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("SLIDESTREAM_API", "SEARCH_API", "SLIDESTREAM_SEARCH_API"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("UPLOAD_API", STACK_API)
    settings = ClientSettings.load(tmp_path)
    assert settings.api == STACK_API
    assert settings.search_api == DEFAULT_SEARCH_API
