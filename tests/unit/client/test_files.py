"""Choosing files and reading --meta."""

from __future__ import annotations

from pathlib import Path

import pytest

from slidestream_client.files import InputError, collect_files, meta_json, parse_meta


def test_collect_walks_directories_and_skips_hidden(tmp_path: Path) -> None:
    (tmp_path / "b.svs").write_bytes(b"b")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.svs").write_bytes(b"a")
    (tmp_path / ".hidden.svs").write_bytes(b"h")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "x").write_bytes(b"x")
    found = collect_files([tmp_path, tmp_path / "b.svs"])
    assert found == [(tmp_path / "b.svs").resolve(), (tmp_path / "sub" / "a.svs").resolve()]


def test_collect_refuses_missing_paths(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        collect_files([tmp_path / "nope"])


def test_parse_meta() -> None:
    assert parse_meta(["study=S1", "note=a=b", "empty="]) == {
        "study": "S1",
        "note": "a=b",
        "empty": "",
    }


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        (["novalue"], "key=value"),
        (["=v"], "must be"),
        (["bad key=v"], "must be"),
        (["k=1", "k=2"], "twice"),
        (["mpp_um=250nm"], r"^--meta mpp_um: unit 'nm' is not accepted"),
        (["objective_power=forty"], r"^--meta objective_power: "),
    ],
)
def test_parse_meta_errors(pairs: list[str], message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_meta(pairs)


def test_meta_json_is_canonical() -> None:
    assert meta_json({}) is None
    assert meta_json({"b": "2", "a": "é"}) == '{"a":"é","b":"2"}'
