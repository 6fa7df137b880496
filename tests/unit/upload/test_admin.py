"""``slidestream admin tenant|token``: expiry, rotation and the listing, on a SQLite database."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from typer.testing import CliRunner

from slidestream_upload.adapters.repository import UploadRepository
from slidestream_upload.admin import app

runner = CliRunner()


@pytest.fixture
def admin(tmp_path: Path, uploads: UploadRepository, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The option that points the commands at the ``uploads`` fixture's database (the
    environment wins over any env file, so a developer's stack.env cannot redirect them)."""
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'upload.db'}")
    env_file = tmp_path / "empty.env"
    env_file.write_text("")
    return ["--env-file", str(env_file)]


def run(*args: str) -> Any:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout) if "--json" in args else result.stdout


def test_a_token_created_with_an_expiry_says_when(
    admin: list[str], uploads: UploadRepository
) -> None:
    created = run("token", "create", "acme", "--expires-in", "90d", "--json", *admin)

    expires_at = datetime.fromisoformat(created["expires_at"])
    assert abs(expires_at - (datetime.now(UTC) + timedelta(days=90))) < timedelta(minutes=1)
    assert uploads.authenticate(created["token"]) == "acme"


def test_a_new_tenants_first_token_may_expire_too(admin: list[str]) -> None:
    created = run("tenant", "create", "lab-b", "--expires-in", "12w", "--json", *admin)
    assert created["tenant"] == "lab-b" and created["expires_at"] is not None


def test_without_an_expiry_a_token_never_expires(admin: list[str]) -> None:
    created = run("token", "create", "acme", "--json", *admin)
    assert created["expires_at"] is None
    assert "never" in run("token", "list", "acme", *admin)


@pytest.mark.parametrize("expires_in", ["90x", "0", "soon"])
def test_a_bad_lifetime_is_refused(admin: list[str], expires_in: str) -> None:
    result = runner.invoke(app, ["token", "create", "acme", "--expires-in", expires_in, *admin])
    assert result.exit_code == 2
    assert "--expires-in" in result.output


def test_rotate_issues_a_successor_and_keeps_the_old_token_for_the_grace(
    admin: list[str], uploads: UploadRepository
) -> None:
    old = run("token", "create", "acme", "--label", "lims", "--json", *admin)

    new = run("token", "rotate", old["token_id"], "--grace", "24h", "--json", *admin)

    assert (new["tenant"], new["replaces"]) == ("acme", old["token_id"])
    assert new["token"] != old["token"]
    assert uploads.authenticate(old["token"]) == "acme"
    later = datetime.now(UTC) + timedelta(hours=25)
    assert uploads.authenticate(old["token"], now=later) != "acme"
    assert uploads.authenticate(new["token"], now=later) == "acme"
    rows = {str(row.token_id): row for row in uploads.tokens("acme")}
    assert rows[old["token_id"]].rotated_to == UUID(new["token_id"])
    assert rows[new["token_id"]].label == "lims"


def test_the_listing_shows_expiry_and_rotation(admin: list[str]) -> None:
    old = run("token", "create", "acme", "--expires-in", "30d", "--json", *admin)
    new = run("token", "rotate", old["token_id"], "--grace", "0", "--json", *admin)

    runner_result = runner.invoke(app, ["token", "list", "acme", *admin], env={"COLUMNS": "250"})

    assert runner_result.exit_code == 0
    listing = runner_result.stdout
    assert "expires" in listing and "rotated to" in listing
    assert "(expired)" in listing  # the old token, cut at once
    assert new["token_id"] in listing


def test_a_revoked_token_cannot_be_rotated(admin: list[str]) -> None:
    created = run("token", "create", "acme", "--json", *admin)
    run("token", "revoke", created["token_id"], *admin)

    result = runner.invoke(app, ["token", "rotate", created["token_id"], *admin])

    assert result.exit_code == 1
    assert "no active token" in result.output
