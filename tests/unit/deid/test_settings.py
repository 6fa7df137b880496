"""The pseudonym and vault keys come from files and never show: repr, dumps, logs."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from pydantic import ValidationError

from slidestream_deid.adapters.vault_cipher import AesGcmVaultCipher
from slidestream_deid.settings import DeidSettings, KeyFileError
from slidestream_platform.logging import configure_logging
from slidestream_platform.settings import read_secret_file

SECRET = "9f2c4e6a8b0d1f3e5a7c9e1b3d5f7a9c-not-a-real-key-0123456789abcdef"
VAULT_SECRET = "0b1d3f5a7c9e2b4d6f8a0c2e4b6d8f1a-not-a-vault-key-fedcba9876543210"
RETIRED_VAULT_SECRET = "7e5c3a1f9d7b5e3c1a9f7d5b3e1c9a7f-retired-vault-key-0011223344556677"


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "deid-pseudonym-key"
    path.write_text(SECRET + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def vault_key_file(tmp_path: Path) -> Path:
    path = tmp_path / "deid-vault-key"
    path.write_text(VAULT_SECRET + "\n")
    return path


def test_key_is_read_from_the_file_and_hidden_everywhere(
    key_file: Path, vault_key_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = DeidSettings(
        pseudonym_key_file=key_file, pseudonym_key_version=3, vault_key_file=vault_key_file
    )
    key = settings.pseudonym_key()
    assert key.version == 3
    assert key.secret == SECRET.encode()  # the trailing newline is not part of the key
    vault_keys = settings.vault_keys()
    assert vault_keys.secrets == {1: VAULT_SECRET.encode()}
    secret_wrapper = read_secret_file(key_file)
    shown = [
        repr(vault_keys),
        str(vault_keys),
        repr(AesGcmVaultCipher(vault_keys)),
        repr(settings),
        str(settings),
        str(settings.model_dump()),
        settings.model_dump_json(),
        repr(key),
        str(key),
        repr(secret_wrapper),
        str(secret_wrapper),
    ]
    for text in shown:
        assert SECRET not in text
        assert SECRET[:16] not in text
        assert VAULT_SECRET[:16] not in text
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        configure_logging("deid", level="DEBUG", json_lines=True)
        logging.getLogger("test").info(
            "settings", extra={"settings": settings, "key": key, "secret": secret_wrapper}
        )
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
    out = capsys.readouterr().out
    assert '"event": "settings"' in out
    assert SECRET[:16] not in out and VAULT_SECRET[:16] not in out


def test_key_file_path_and_version_come_from_the_environment(
    key_file: Path, vault_key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PSEUDONYM_KEY_FILE", str(key_file))
    monkeypatch.setenv("PSEUDONYM_KEY_VERSION", "2")
    monkeypatch.setenv("VAULT_KEY_FILE", str(vault_key_file))
    settings = DeidSettings()
    assert settings.pseudonym_key_file == key_file
    assert settings.pseudonym_key().version == 2
    assert settings.vault_key_file == vault_key_file and settings.vault_key_id == 1
    assert settings.service_name == "deid" and settings.http_port == 8092


def test_vault_keys_current_and_retired_come_from_the_environment(
    key_file: Path, vault_key_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    retired = tmp_path / "vault-key-1"
    retired.write_text(RETIRED_VAULT_SECRET)
    monkeypatch.setenv("PSEUDONYM_KEY_FILE", str(key_file))
    monkeypatch.setenv("VAULT_KEY_FILE", str(vault_key_file))
    monkeypatch.setenv("VAULT_KEY_ID", "2")
    monkeypatch.setenv("VAULT_RETIRED_KEY_FILES", json.dumps({"1": str(retired)}))

    keys = DeidSettings().vault_keys()

    assert keys.current_id == 2
    assert keys.secrets == {1: RETIRED_VAULT_SECRET.encode(), 2: VAULT_SECRET.encode()}


def test_a_missing_vault_key_setting_or_file_fails_at_start(key_file: Path, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="vault_key_file"):
        DeidSettings(pseudonym_key_file=key_file)
    settings = DeidSettings(pseudonym_key_file=key_file, vault_key_file=tmp_path / "absent")
    with pytest.raises(KeyFileError, match="cannot read the secret file"):
        settings.vault_keys()


@pytest.mark.parametrize("content", [b"", b"short\n", b"x" * 5000])
def test_unusable_key_files_fail_at_start_without_showing_bytes(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "key"
    path.write_bytes(content)
    with pytest.raises(KeyFileError) as raised:
        DeidSettings(pseudonym_key_file=path, vault_key_file=path).pseudonym_key()
    assert "xxxx" not in str(raised.value) and "short" not in str(raised.value)


def test_missing_key_file_fails_at_start(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError):
        DeidSettings(
            pseudonym_key_file=tmp_path / "absent", vault_key_file=tmp_path / "absent"
        ).pseudonym_key()
