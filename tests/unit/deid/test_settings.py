"""The pseudonym key comes from a file and never shows: repr, dumps, logs."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from slidestream_deid.settings import DeidSettings, PseudonymKeyError
from slidestream_platform.logging import configure_logging
from slidestream_platform.settings import read_secret_file

SECRET = "9f2c4e6a8b0d1f3e5a7c9e1b3d5f7a9c-not-a-real-key-0123456789abcdef"


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "deid-pseudonym-key"
    path.write_text(SECRET + "\n")
    path.chmod(0o600)
    return path


def test_key_is_read_from_the_file_and_hidden_everywhere(
    key_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = DeidSettings(pseudonym_key_file=key_file, pseudonym_key_version=3)
    key = settings.pseudonym_key()
    assert key.version == 3
    assert key.secret == SECRET.encode()  # the trailing newline is not part of the key
    secret_wrapper = read_secret_file(key_file)
    shown = [
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
    assert SECRET[:16] not in out


def test_key_file_path_and_version_come_from_the_environment(
    key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PSEUDONYM_KEY_FILE", str(key_file))
    monkeypatch.setenv("PSEUDONYM_KEY_VERSION", "2")
    settings = DeidSettings()
    assert settings.pseudonym_key_file == key_file
    assert settings.pseudonym_key().version == 2
    assert settings.service_name == "deid" and settings.http_port == 8092


@pytest.mark.parametrize("content", [b"", b"short\n", b"x" * 5000])
def test_unusable_key_files_fail_at_start_without_showing_bytes(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "key"
    path.write_bytes(content)
    with pytest.raises(PseudonymKeyError) as raised:
        DeidSettings(pseudonym_key_file=path).pseudonym_key()
    assert "xxxx" not in str(raised.value) and "short" not in str(raised.value)


def test_missing_key_file_fails_at_start(tmp_path: Path) -> None:
    with pytest.raises(PseudonymKeyError):
        DeidSettings(pseudonym_key_file=tmp_path / "absent").pseudonym_key()
