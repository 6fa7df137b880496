"""Options every ``slidestream`` command that talks to a server shares."""

from __future__ import annotations

from typing import Annotated

import typer

TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        help="API token (env SLIDESTREAM_TOKEN; prefer it: arguments are visible to ps).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
