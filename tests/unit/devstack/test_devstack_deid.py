"""The local stack's deid part: its two key files (pseudonym and vault), generated once,
private, different, named by path in the service's environment, which its settings read."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from rich.console import Console

from slidestream_deid.domain.keys import check_keys_are_separate
from slidestream_deid.settings import DeidSettings
from slidestream_devstack.credentials import load_or_create_credentials
from slidestream_devstack.part import StackContext
from slidestream_devstack.paths import StackPaths
from slidestream_devstack.secret_files import deid_vault_key_file, read_secret
from slidestream_devstack.services import DeidServicePart
from slidestream_devstack.settings import DevstackSettings


@pytest.fixture
def ctx(tmp_path: Path) -> StackContext:
    paths = StackPaths(tmp_path)
    paths.ensure()
    return StackContext(
        paths=paths,
        settings=DevstackSettings(),
        credentials=load_or_create_credentials(paths.credentials_file),
        console=Console(quiet=True),
        peer_env={"KAFKA_BOOTSTRAP": "127.0.0.1:19092", "S3_ENDPOINT": "http://127.0.0.1:19000"},
    )


def test_deid_gets_a_private_vault_key_file_beside_its_pseudonym_key(
    ctx: StackContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    part = DeidServicePart()
    part.prepare(ctx)

    env = part.launch_spec(ctx).env

    vault_path = Path(env["VAULT_KEY_FILE"])
    assert vault_path == ctx.paths.local / "secrets" / "deid-vault-key"
    assert stat.S_IMODE(vault_path.stat().st_mode) == 0o600
    vault_secret = read_secret(vault_path)
    assert len(bytes.fromhex(vault_secret)) == 32  # 256 random bits, hex-encoded
    assert vault_secret != read_secret(Path(env["PSEUDONYM_KEY_FILE"]))
    assert vault_secret not in "".join(env.values())
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = DeidSettings()
    assert settings.vault_key_file == vault_path and settings.vault_key_id == 1
    check_keys_are_separate(settings.pseudonym_key().secret, settings.vault_keys())


def test_the_vault_key_file_is_kept_across_starts(ctx: StackContext) -> None:
    first = read_secret(deid_vault_key_file(ctx.paths.local))
    DeidServicePart().prepare(ctx)
    assert read_secret(deid_vault_key_file(ctx.paths.local)) == first
