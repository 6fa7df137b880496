"""``slidestream admin``: tenants and partner tokens (operators; talks to the upload database).

Tokens are printed once and stored only as a hash; ``--json`` output is for scripts. A token
expires only when issued with ``--expires-in``; ``token rotate`` issues its successor and lets the
old one work for a grace period (``domain/tokens``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from uuid import UUID

import typer
from pydantic import TypeAdapter
from rich.console import Console
from rich.table import Table

from slidestream_contracts.events import TenantId
from slidestream_upload.domain.tokens import as_utc, parse_duration
from slidestream_upload.settings import GIB, UploadSettings

if TYPE_CHECKING:
    from slidestream_upload.adapters.repository import IssuedToken, UploadRepository

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
LOCAL_STACK_ENV = Path(".local/stack.env")
_TENANT_SLUG: TypeAdapter[str] = TypeAdapter(TenantId)  # the one slug rule, from the contracts

app = typer.Typer(name="admin", help="Operate slidestream: tenants and partner tokens.")
tenant_app = typer.Typer(help="Tenants (partners) and their quotas.", no_args_is_help=True)
token_app = typer.Typer(help="Partner API tokens.", no_args_is_help=True)
app.add_typer(tenant_app, name="tenant")
app.add_typer(token_app, name="token")
_out = Console()
_err = Console(stderr=True)

EnvFile = Annotated[
    Path | None,
    typer.Option(help="Read settings from this env file (default: .local/stack.env if present)."),
]
ExpiresIn = Annotated[
    str | None,
    typer.Option(
        "--expires-in",
        help="Lifetime of the token, e.g. 90d, 12w, 24h (default: it never expires).",
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="One JSON object (for scripts).")]


def _duration(text: str, option: str) -> timedelta:
    try:
        duration = parse_duration(text)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint=option) from error
    return duration


def _expiry(expires_in: str | None) -> datetime | None:
    if expires_in is None:
        return None
    lifetime = _duration(expires_in, "--expires-in")
    if lifetime <= timedelta(0):
        raise typer.BadParameter("a token needs a lifetime above 0", param_hint="--expires-in")
    return datetime.now(UTC) + lifetime


def _moment(moment: datetime | None) -> str | None:
    return as_utc(moment).isoformat(timespec="seconds") if moment is not None else None


def _expires(moment: datetime | None) -> str:
    if moment is None:
        return "never"
    ended = " (expired)" if as_utc(moment) <= datetime.now(UTC) else ""
    return f"{_moment(moment)}{ended}"


def _print_issued(issued: IssuedToken, *, as_json: bool, **extra: str) -> None:
    if as_json:
        fields = {
            "tenant": issued.tenant,
            "token_id": str(issued.token_id),
            "token": issued.token,
            "expires_at": _moment(issued.expires_at),
            **extra,
        }
        typer.echo(json.dumps(fields))
    else:
        typer.echo(issued.token)


def _repository(env_file: Path | None) -> UploadRepository:
    # Imported here: the `slidestream` CLI loads this plug-in on every start, and the database
    # stack (SQLAlchemy, Alembic) costs seconds that partners' commands should not pay.
    from slidestream_platform.db import make_engine, upgrade_to_head
    from slidestream_upload.adapters.repository import UploadRepository

    chosen = env_file or (LOCAL_STACK_ENV if LOCAL_STACK_ENV.exists() else None)
    settings = UploadSettings(_env_file=chosen)
    engine = make_engine(settings.database, settings.service_name)
    upgrade_to_head(engine, settings.service_name, MIGRATIONS_DIR)
    return UploadRepository(engine)


@tenant_app.command("create")
def tenant_create(
    name: Annotated[str, typer.Argument(help="Tenant slug: lowercase letters, digits, '-'.")],
    quota_gib: Annotated[float, typer.Option(help="Storage quota in GiB.")] = 10240.0,
    expires_in: ExpiresIn = None,
    as_json: AsJson = False,
    env_file: EnvFile = None,
) -> None:
    """Create a tenant and print its first token (shown once)."""
    expires_at = _expiry(expires_in)
    try:
        slug = _TENANT_SLUG.validate_python(name)
    except ValueError as error:
        _err.print(f"[red]error:[/] invalid tenant name {name!r}: lowercase letters, digits, '-'")
        raise typer.Exit(2) from error
    uploads = _repository(env_file)
    try:
        uploads.create_tenant(slug, quota_bytes=int(quota_gib * GIB))
    except ValueError as error:  # TenantExistsError
        _err.print(f"[red]error:[/] tenant {slug!r} exists; use `slidestream admin token create`")
        raise typer.Exit(1) from error
    issued = uploads.issue_token(slug, label="initial", expires_at=expires_at)
    _print_issued(issued, as_json=as_json)


@tenant_app.command("list")
def tenant_list(env_file: EnvFile = None) -> None:
    """Tenants and their quotas."""
    table = Table("tenant", "quota (GiB)", "used (GiB)", "created")
    uploads = _repository(env_file)
    for row in uploads.tenants():
        quota, used = uploads.quota(row.slug)
        table.add_row(
            row.slug, f"{quota / GIB:.1f}", f"{used / GIB:.2f}", row.created_at.isoformat()
        )
    _out.print(table)


@token_app.command("create")
def token_create(
    tenant: str,
    label: Annotated[str, typer.Option(help="What the token is for.")] = "",
    expires_in: ExpiresIn = None,
    as_json: AsJson = False,
    env_file: EnvFile = None,
) -> None:
    """Issue another token for a tenant (printed once)."""
    expires_at = _expiry(expires_in)
    try:
        issued = _repository(env_file).issue_token(tenant, label=label, expires_at=expires_at)
    except LookupError as error:  # UnknownTenantError
        _err.print(f"[red]error:[/] no tenant {tenant!r}")
        raise typer.Exit(1) from error
    _print_issued(issued, as_json=as_json)


@token_app.command("rotate")
def token_rotate(
    token_id: UUID,
    grace: Annotated[
        str,
        typer.Option(help="How long the old token keeps working, e.g. 24h, 7d, 0 (at once)."),
    ] = "24h",
    expires_in: Annotated[
        str | None,
        typer.Option(
            "--expires-in",
            help="Lifetime of the new token (default: the old token's lifetime, if it had one).",
        ),
    ] = None,
    as_json: AsJson = False,
    env_file: EnvFile = None,
) -> None:
    """Issue a successor to a token (same tenant and label; printed once). The old token keeps
    working until the grace period ends, then answers 401."""
    grace_period = _duration(grace, "--grace")
    lifetime = None if expires_in is None else _duration(expires_in, "--expires-in")
    if lifetime is not None and lifetime <= timedelta(0):
        raise typer.BadParameter("a token needs a lifetime above 0", param_hint="--expires-in")
    try:
        issued = _repository(env_file).rotate_token(
            token_id, grace=grace_period, expires_in=lifetime
        )
    except LookupError as error:  # InactiveTokenError
        _err.print(
            f"[red]error:[/] no active token {token_id} (unknown, revoked, expired or rotated)"
        )
        raise typer.Exit(1) from error
    _print_issued(issued, as_json=as_json, replaces=str(token_id))
    if not as_json:
        _err.print(f"{token_id} keeps working for {grace}; the new token is {issued.token_id}")


@token_app.command("list")
def token_list(tenant: str, env_file: EnvFile = None) -> None:
    """A tenant's tokens (ids, labels and lifetimes; the tokens themselves are not stored)."""
    table = Table("token id", "label", "created", "expires", "revoked", "rotated to")
    for row in _repository(env_file).tokens(tenant):
        table.add_row(
            str(row.token_id),
            row.label,
            _moment(row.created_at),
            _expires(row.expires_at),
            _moment(row.revoked_at) or "",
            str(row.rotated_to) if row.rotated_to else "",
        )
    _out.print(table)


@token_app.command("revoke")
def token_revoke(token_id: UUID, env_file: EnvFile = None) -> None:
    """Revoke a token: its next request is refused with 401."""
    if not _repository(env_file).revoke_token(token_id):
        _err.print(f"[red]error:[/] no active token {token_id}")
        raise typer.Exit(1)
    _out.print(f"revoked {token_id}")
