"""``slidestream upload`` and ``slidestream status`` against the in-memory server."""

from __future__ import annotations

import json
import random
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner

from slidestream_client import cli
from slidestream_client.sdk import SlidestreamClient

from .conftest import API, TOKEN

if TYPE_CHECKING:
    from .conftest import FakeServer

runner = CliRunner()


@pytest.fixture(autouse=True)
def fake_network(server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        cli, "SlidestreamClient", partial(SlidestreamClient, transport=server.transport())
    )
    monkeypatch.setenv("SLIDESTREAM_API", API)
    monkeypatch.setenv("SLIDESTREAM_TOKEN", TOKEN)


def slides_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "slides"
    (folder / "sub").mkdir(parents=True)
    rng = random.Random(7)
    for name in ("a.svs", "b.svs", "sub/c.svs"):
        (folder / name).write_bytes(rng.randbytes(300_000))
    (folder / ".DS_Store").write_bytes(b"junk")
    return folder


def lines(output: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def test_upload_json_one_line_per_file(tmp_path: Path, state_dir: Path) -> None:
    result = runner.invoke(
        cli.app,
        [
            *("upload", str(slides_dir(tmp_path)), "--json", "--parallel", "3"),
            *("--state-dir", str(state_dir), "--meta", "study=S1"),
        ],
    )
    assert result.exit_code == 0, result.output
    rows = lines(result.stdout)
    assert sorted(Path(str(r["path"])).name for r in rows) == ["a.svs", "b.svs", "c.svs"]
    assert all(r["status"] == "uploaded" and r["error"] is None and r["slide_id"] for r in rows)
    assert TOKEN not in result.output


def test_upload_human_summary(tmp_path: Path, state_dir: Path) -> None:
    result = runner.invoke(
        cli.app, ["upload", str(slides_dir(tmp_path)), "--state-dir", str(state_dir)]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.count("uploaded") >= 3


def test_upload_with_manifest_names_the_batch(
    tmp_path: Path, state_dir: Path, server: FakeServer
) -> None:
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("filename,sha256\na.svs," + "a" * 64 + "\n")
    result = runner.invoke(
        cli.app,
        [
            *("upload", str(slides_dir(tmp_path) / "a.svs"), "--json"),
            *("--manifest", str(manifest), "--state-dir", str(state_dir)),
        ],
    )
    assert result.exit_code == 0, result.output
    (row,) = lines(result.stdout)
    (batch_id,) = server.batches
    assert row["batch_id"] == batch_id
    assert next(iter(server.uploads.values())).metadata["batch_id"] == batch_id


def test_wrong_token_fails_clearly(tmp_path: Path, state_dir: Path) -> None:
    folder = slides_dir(tmp_path)
    human = runner.invoke(
        cli.app, ["upload", str(folder), "--token", "wrong-token", "--state-dir", str(state_dir)]
    )
    assert human.exit_code == 1
    assert "refused the token" in human.stderr
    assert "wrong-token" not in human.output
    machine = runner.invoke(
        cli.app,
        ["upload", str(folder), "--json", "--token", "wrong-token", "--state-dir", str(state_dir)],
    )
    assert machine.exit_code == 1
    rows = lines(machine.stdout)
    assert len(rows) == 3
    assert all(r["status"] == "failed" and r["reason"] == "unauthorized" for r in rows)


def test_a_refused_file_fails_the_run(tmp_path: Path, state_dir: Path, server: FakeServer) -> None:
    server.refuse_creation = (400, "empty-upload", "a slide cannot be empty")
    empty = tmp_path / "empty.svs"
    empty.write_bytes(b"")
    result = runner.invoke(cli.app, ["upload", str(empty), "--json", "--state-dir", str(state_dir)])
    assert result.exit_code == 1
    (row,) = lines(result.stdout)
    assert (row["status"], row["error"]) == ("failed", "a slide cannot be empty")


@pytest.mark.parametrize(
    "args",
    [["--meta", "novalue"], ["--meta", "k=1", "--meta", "k=2"]],
)
def test_bad_arguments_exit_2(tmp_path: Path, args: list[str]) -> None:
    (tmp_path / "a.svs").write_bytes(b"x")
    result = runner.invoke(cli.app, ["upload", str(tmp_path / "a.svs"), *args])
    assert result.exit_code == 2


def test_missing_api_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SLIDESTREAM_API")
    monkeypatch.delenv("UPLOAD_API", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.svs").write_bytes(b"x")
    result = runner.invoke(cli.app, ["upload", str(tmp_path / "a.svs")])
    assert result.exit_code == 2
    assert "SLIDESTREAM_API" in result.stderr


def test_the_local_stacks_api_is_found_without_settings(
    tmp_path: Path, server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Right after `make up`, inside the checkout, the CLI reads .local/stack.env's UPLOAD_API."""
    monkeypatch.delenv("SLIDESTREAM_API")
    monkeypatch.delenv("UPLOAD_API", raising=False)
    (tmp_path / ".local").mkdir()
    (tmp_path / ".local" / "stack.env").write_text(f"UPLOAD_API={API}\n", encoding="utf-8")
    (tmp_path / "slides").mkdir()
    monkeypatch.chdir(tmp_path / "slides")
    server.slide_states["s1"] = [{"state": "converted", "step": "convert"}]
    result = runner.invoke(cli.app, ["status", "s1", "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["state"] == "converted"


def test_status_without_wait(server: FakeServer) -> None:
    server.slide_states["s1"] = [{"state": "converted", "step": "convert"}]
    result = runner.invoke(cli.app, ["status", "s1", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {
        "slide_id": "s1",
        "state": "converted",
        "step": "convert",
        "upload_state": None,
    }
    human = runner.invoke(cli.app, ["status", "s1"])
    assert "converted (by convert)" in human.stdout


@pytest.mark.parametrize(
    ("script", "stage", "exit_code", "outcome"),
    [
        ([{"state": None}, {"state": "uploaded", "step": "upload"}], "uploaded", 0, "reached"),
        ([{"state": "qc_failed", "step": "qc"}], "qc", 0, "reached"),
        ([{"state": "rejected", "step": "upload", "reason": "bad"}], "uploaded", 1, "stopped"),
        ([{"state": "failed:deid", "step": "deid"}], "deidentified", 1, "stopped"),
        ([{"state": "uploaded", "step": "upload"}], "indexed", 2, "pending"),
    ],
)
def test_status_wait_exit_codes(
    server: FakeServer,
    script: list[dict[str, object]],
    stage: str,
    exit_code: int,
    outcome: str,
) -> None:
    server.slide_states["s1"] = script
    result = runner.invoke(cli.app, ["status", "s1", "--wait", stage, "--timeout", "1.5", "--json"])
    assert result.exit_code == exit_code, result.output
    data = json.loads(result.stdout)
    assert data["outcome"] == outcome
    assert data["state"] == script[-1]["state"]
    if "reason" in script[-1]:
        assert data["reason"] == script[-1]["reason"]


def test_status_of_an_unknown_slide_exits_3() -> None:
    result = runner.invoke(cli.app, ["status", "nope", "--wait", "uploaded", "--json"])
    assert result.exit_code == 3
    data = json.loads(result.stdout)
    assert (data["slide_id"], data["state"], data["reason"]) == ("nope", None, "not-found")


def test_slides_fix_sends_the_facts_once(server: FakeServer) -> None:
    result = runner.invoke(cli.app, ["slides", "fix", "s1", "--mpp-um", "0.25", "--json"])
    assert result.exit_code == 0, result.stderr
    answer = json.loads(result.stdout)
    assert (answer["step"], answer["declared"]) == ("convert", {"mpp_um": 0.25})
    assert server.fixes == {"s1": {"mpp_um": "0.25"}}

    again = runner.invoke(cli.app, ["slides", "fix", "s1", "--mpp-um", "0.25"])
    assert again.exit_code == 1
    assert "fixed once" in again.stderr


def test_slides_fix_refuses_a_wrong_unit_before_asking(server: FakeServer) -> None:
    result = runner.invoke(cli.app, ["slides", "fix", "s1", "--mpp-um", "250nm"])
    assert result.exit_code == 2
    assert "mpp_um: unit 'nm' is not accepted" in result.stderr
    assert server.fixes == {}
