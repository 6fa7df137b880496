"""Plug-ins of the ``slidestream.cli`` entry-point group: same-named ones merge into one group."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import typer
from typer.testing import CliRunner

from slidestream_client.plugins import Plugin, PluginConflictError, merge_plugins, mount_plugins

runner = CliRunner()


def upload_admin() -> typer.Typer:
    """Shaped like the upload service's ``admin``: sub-groups only."""
    app = typer.Typer(name="admin", help="Tenants and tokens.")
    tenant = typer.Typer(help="Tenants.")

    @tenant.command("create")
    def create(name: str) -> None:
        typer.echo(f"tenant {name} created")

    app.add_typer(tenant, name="tenant")
    return app


def catalog_admin() -> typer.Typer:
    """Shaped like the catalog service's ``admin``: one command."""
    app = typer.Typer(name="admin", help="Search index.")

    @app.command()
    def reindex(from_earliest: bool = False) -> None:
        typer.echo(f"reindexed (from earliest: {from_earliest})")

    return app


@dataclass(frozen=True)
class FakeEntryPoint:
    name: str
    value: str
    app: object

    def load(self) -> object:
        return self.app


def mounted(*found: FakeEntryPoint) -> typer.Typer:
    root = typer.Typer()

    @root.command()
    def version() -> None:
        typer.echo("0")

    mount_plugins(root, found)
    return root


def test_same_named_plugins_merge_into_one_group() -> None:
    root = mounted(
        FakeEntryPoint("admin", "slidestream_upload.admin:app", upload_admin()),
        FakeEntryPoint("admin", "slidestream_catalog.admin:app", catalog_admin()),
        FakeEntryPoint("broken", "elsewhere:not_an_app", object()),
    )
    created = runner.invoke(root, ["admin", "tenant", "create", "acme"])
    assert (created.exit_code, created.stdout) == (0, "tenant acme created\n")
    reindexed = runner.invoke(root, ["admin", "reindex", "--from-earliest"])
    assert (reindexed.exit_code, reindexed.stdout) == (0, "reindexed (from earliest: True)\n")
    listing = runner.invoke(root, ["admin", "--help"], env={"COLUMNS": "120"})
    assert "tenant" in listing.stdout and "reindex" in listing.stdout
    assert "Tenants and tokens. Search index." in listing.stdout
    assert "broken" not in runner.invoke(root, ["--help"]).stdout


def test_a_single_plugin_is_mounted_as_it_is() -> None:
    app = catalog_admin()
    assert merge_plugins("admin", [Plugin("slidestream_catalog.admin:app", app)]) is app
    result = runner.invoke(mounted(FakeEntryPoint("admin", "x:app", app)), ["admin", "reindex"])
    assert result.stdout == "reindexed (from earliest: False)\n"


def test_two_plugins_defining_one_command_are_refused() -> None:
    with pytest.raises(PluginConflictError) as caught:
        mounted(
            FakeEntryPoint("admin", "slidestream_catalog.admin:app", catalog_admin()),
            FakeEntryPoint("admin", "other.admin:app", catalog_admin()),
        )
    assert str(caught.value) == (
        "`slidestream admin reindex` is defined by both slidestream_catalog.admin:app and "
        "other.admin:app: rename one of them"
    )


def test_a_merged_plugin_with_group_options_is_refused() -> None:
    with_options = typer.Typer(name="admin")

    @with_options.callback()
    def main(env_file: str = ".local/stack.env") -> None:
        """Options for every command of the group."""

    @with_options.command()
    def tokens() -> None:
        typer.echo("tokens")

    with pytest.raises(PluginConflictError, match=r"other.admin:app has options of its own"):
        merge_plugins(
            "admin",
            [
                Plugin("slidestream_catalog.admin:app", catalog_admin()),
                Plugin("other.admin:app", with_options),
            ],
        )


def test_a_callback_without_options_merges() -> None:
    """A one-command plug-in keeps itself a group with an empty callback; merging loses
    nothing of it."""
    grouped = catalog_admin()

    @grouped.callback()
    def admin() -> None:
        """Operate slidestream."""

    root = typer.Typer()
    root.add_typer(
        merge_plugins(
            "admin",
            [Plugin("slidestream_upload.admin:app", upload_admin()), Plugin("c:app", grouped)],
        ),
        name="admin",
    )
    assert runner.invoke(root, ["admin", "reindex"]).output.startswith("reindexed")
    assert "created" in runner.invoke(root, ["admin", "tenant", "create", "x"]).output
