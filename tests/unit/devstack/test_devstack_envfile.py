"""stack.env rendering and parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from slidestream_devstack.envfile import parse_env, read_env_file, render_env, write_env_file


def test_render_then_parse_round_trips() -> None:
    values = {"S3_ENDPOINT": "http://127.0.0.1:19000", "DATABASE_URL": "sqlite:////tmp/x.db"}
    assert parse_env(render_env(values)) == values


def test_render_sorts_keys_and_starts_with_a_comment() -> None:
    text = render_env({"B": "2", "A": "1"})
    lines = text.splitlines()
    assert lines[0].startswith("#")
    assert lines[1:] == ["A=1", "B=2"]


def test_value_may_contain_equals_signs() -> None:
    assert parse_env("TOKEN=a=b==\n") == {"TOKEN": "a=b=="}


def test_parse_skips_comments_blanks_quotes_and_export() -> None:
    text = "# comment\n\nexport A='x y'\nB=\"1\"\n  C = 3  \n"
    assert parse_env(text) == {"A": "x y", "B": "1", "C": "3"}


@pytest.mark.parametrize("bad", ["lowercase=1", "NO_SEPARATOR", "1ABC=2"])
def test_parse_rejects_lines_that_are_not_assignments(bad: str) -> None:
    with pytest.raises(ValueError, match="line 1"):
        parse_env(bad)


def test_render_rejects_multiline_values_and_bad_names() -> None:
    with pytest.raises(ValueError, match="spans lines"):
        render_env({"A": "1\n2"})
    with pytest.raises(ValueError, match="not an environment variable name"):
        render_env({"a-b": "1"})


def test_file_is_private_and_missing_file_reads_empty(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "stack.env"
    assert read_env_file(path) == {}
    write_env_file(path, {"S3_SECRET_KEY": "s3cr3t"})
    assert read_env_file(path) == {"S3_SECRET_KEY": "s3cr3t"}
    assert path.stat().st_mode & 0o077 == 0
