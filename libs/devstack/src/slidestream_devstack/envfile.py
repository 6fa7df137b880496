"""``.local/stack.env``: every endpoint and credential of the running stack, as KEY=VALUE lines.

The format is the common subset of shell ``source``, Make ``include`` and python-dotenv: no quotes,
no spaces around ``=``, no multi-line values. Values we generate never need quoting.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

_KEY_PATTERN = re.compile(r"[A-Z_][A-Z0-9_]*")
HEADER = "# Written by `slidestream stack up`; do not edit (it is rewritten on every up/down).\n"


def render_env(values: Mapping[str, str]) -> str:
    """Sorted KEY=VALUE lines, so that the file diffs cleanly between runs."""
    lines = [HEADER]
    for key in sorted(values):
        value = values[key]
        if not _KEY_PATTERN.fullmatch(key):
            raise ValueError(f"not an environment variable name: {key!r}")
        if "\n" in value or "\r" in value:
            raise ValueError(f"value of {key} spans lines")
        lines.append(f"{key}={value}\n")
    return "".join(lines)


def parse_env(text: str) -> dict[str, str]:
    """Read KEY=VALUE lines, skipping blanks and ``#`` comments and dropping one pair of quotes."""
    values: dict[str, str] = {}
    for number, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        key, separator, value = line.partition("=")
        key = key.strip().removeprefix("export ").strip()
        if not separator or not _KEY_PATTERN.fullmatch(key):
            raise ValueError(f"line {number} is not KEY=VALUE: {raw_line!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


def write_env_file(path: Path, values: Mapping[str, str]) -> None:
    """Replace the file atomically: readers (other test sessions) never see half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(render_env(values), encoding="utf-8")
    # Credentials inside: readable by the developer only.
    temporary.chmod(0o600)
    temporary.replace(path)


def read_env_file(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    return parse_env(path.read_text(encoding="utf-8"))
