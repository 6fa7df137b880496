"""``slidestream admin``: tenants and partner tokens (operators; talks to the upload database).

Tokens are printed once and stored only as a hash; ``--json`` output is for scripts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from uuid import UUID

import typer
from pydantic import TypeAdapter
from rich.console import Console
from rich.table import Table

from slidestream_contracts.events import TenantId
from slidestream_upload.settings import GIB, UploadSettings

if TYPE_CHECKING:
    from slidestream_upload.adapters.repository import UploadRepository

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
    as_json: Annotated[bool, typer.Option("--json")] = False,
    env_file: EnvFile = None,
) -> None:
    """Create a tenant and print its first token (shown once)."""
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
    issued = uploads.issue_token(slug, label="initial")
    if as_json:
        typer.echo(
            json.dumps({"tenant": slug, "token_id": str(issued.token_id), "token": issued.token})
        )
    else:
        typer.echo(issued.token)


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
    env_file: EnvFile = None,
) -> None:
    """Issue another token for a tenant (printed once)."""
    try:
        issued = _repository(env_file).issue_token(tenant, label=label)
    except LookupError as error:  # UnknownTenantError
        _err.print(f"[red]error:[/] no tenant {tenant!r}")
        raise typer.Exit(1) from error
    typer.echo(issued.token)


@token_app.command("list")
def token_list(tenant: str, env_file: EnvFile = None) -> None:
    """A tenant's tokens (ids and labels; the tokens themselves are not stored)."""
    table = Table("token id", "label", "created", "revoked")
    for row in _repository(env_file).tokens(tenant):
        revoked = row.revoked_at.isoformat() if row.revoked_at else ""
        table.add_row(str(row.token_id), row.label, row.created_at.isoformat(), revoked)
    _out.print(table)


@token_app.command("revoke")
def token_revoke(token_id: UUID, env_file: EnvFile = None) -> None:
    """Revoke a token: its next request is refused with 401."""
    if not _repository(env_file).revoke_token(token_id):
        _err.print(f"[red]error:[/] no active token {token_id}")
        raise typer.Exit(1)
    _out.print(f"revoked {token_id}")
