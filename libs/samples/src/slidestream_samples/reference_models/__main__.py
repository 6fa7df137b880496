"""``python -m slidestream_samples.reference_models build --torch-python PY --out DIR``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from slidestream_samples.reference_models.build import build


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m slidestream_samples.reference_models",
        description="Build the reference models (skipped when their inputs are unchanged).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    build_parser = commands.add_parser("build")
    build_parser.add_argument(
        "--torch-python", type=Path, required=True, help="a Python with torch (Triton's)"
    )
    build_parser.add_argument("--out", type=Path, required=True)
    build_parser.add_argument("--force", action="store_true", help="rebuild even if unchanged")
    args = parser.parse_args(argv)
    result = build(args.out, args.torch_python, force=args.force)
    print(json.dumps(result.record, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
