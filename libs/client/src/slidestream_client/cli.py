"""``slidestream``: the command partners, AI teams and operators type.

Sub-commands from other installed slidestream packages plug in through the ``slidestream.cli``
entry-point group (the developer stack adds ``slidestream stack``), so a partner who installs only
this client gets a CLI without the local-stack machinery.
"""

from __future__ import annotations

from importlib.metadata import entry_points

import typer

from slidestream_client import __version__

ENTRY_POINT_GROUP = "slidestream.cli"

app = typer.Typer(
    name="slidestream",
    help="slidestream: share whole-slide images safely and make them ready for AI.",
    no_args_is_help=True,
)


@app.command()
def version() -> None:
    """Print the client version."""
    typer.echo(__version__)


def _mount_plugins(root: typer.Typer) -> None:
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        plugin = entry_point.load()
        if isinstance(plugin, typer.Typer):
            root.add_typer(plugin, name=entry_point.name)


_mount_plugins(app)


def main() -> None:
    app()
