"""Options every ``slidestream`` command that talks to a server shares."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from slidestream_client.output import USAGE_ERROR
from slidestream_client.settings import ClientSettings

TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        help="API token (env SLIDESTREAM_TOKEN; prefer it: arguments are visible to ps).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def require_token(token: str | None, settings: ClientSettings) -> str:
    """``--token``, else ``SLIDESTREAM_TOKEN``; a usage error when neither is given."""
    value = token or (settings.token.get_secret_value() if settings.token else None)
    if not value:
        Console(stderr=True).print("[red]error:[/] no token: set SLIDESTREAM_TOKEN or pass --token")
        raise typer.Exit(USAGE_ERROR)
    return value
