"""Command groups that other installed slidestream packages add to ``slidestream``, through the
``slidestream.cli`` entry-point group (the developer stack adds ``stack``; the upload service
``admin``: tenants and tokens; the catalog service ``admin`` too: ``reindex``).

Plug-ins of the same name merge into one group holding the commands and sub-groups of each;
two that define the same command are refused at start, naming both (a command that silently
replaced another would run the wrong service's code)."""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Protocol

import typer
import typer.main

ENTRY_POINT_GROUP = "slidestream.cli"


class PluginConflictError(RuntimeError):
    """Two installed plug-ins define the same command, or one that is merged has options of
    its own on the group (which a merged group could not keep for it alone)."""


class EntryPointLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def value(self) -> str: ...
    def load(self) -> object: ...


@dataclass(frozen=True, slots=True)
class Plugin:
    origin: str
    """Where it comes from (``module:attribute``), to name it in errors."""
    app: typer.Typer


def mount_plugins(root: typer.Typer, found: Iterable[EntryPointLike] | None = None) -> None:
    """Add every plug-in (``found``, default: the installed entry points) under its name."""
    by_name: dict[str, list[Plugin]] = {}
    for entry_point in entry_points(group=ENTRY_POINT_GROUP) if found is None else found:
        app = entry_point.load()
        if isinstance(app, typer.Typer):
            by_name.setdefault(entry_point.name, []).append(Plugin(entry_point.value, app))
    for name, plugins in by_name.items():
        root.add_typer(merge_plugins(name, plugins), name=name)


def merge_plugins(name: str, plugins: Sequence[Plugin]) -> typer.Typer:
    """One plug-in as it is; several as one group with the commands and sub-groups of each."""
    if len(plugins) == 1:
        return plugins[0].app
    helps = [plugin.app.info.help for plugin in plugins]
    merged = typer.Typer(
        name=name,
        help=" ".join(help_text for help_text in helps if isinstance(help_text, str)),
        no_args_is_help=True,
    )
    owners: dict[str, str] = {}
    for plugin in plugins:
        if _callback_has_options(plugin.app):
            raise PluginConflictError(
                f"`slidestream {name}` comes from several plug-ins, and {plugin.origin} has "
                "options of its own on the group (a callback): move them to its commands"
            )
        for command in typer.main.get_group(plugin.app).commands:
            if command in owners:
                raise PluginConflictError(
                    f"`slidestream {name} {command}` is defined by both {owners[command]} and "
                    f"{plugin.origin}: rename one of them"
                )
            owners[command] = plugin.origin
        merged.registered_commands.extend(plugin.app.registered_commands)
        merged.registered_groups.extend(plugin.app.registered_groups)
    return merged


def _callback_has_options(app: typer.Typer) -> bool:
    """True when the plug-in's group callback takes parameters the merged group would lose (a
    callback without any only keeps a one-command plug-in a group, which merging does too)."""
    info = app.registered_callback
    if info is None or info.callback is None:
        return False
    return bool(inspect.signature(info.callback).parameters)
