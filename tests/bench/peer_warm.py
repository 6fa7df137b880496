"""wsidicomizer's CLI entry point run twice in one process, the second run timed.

Run by ``bench_convert`` with wsidicomizer's own interpreter and environment (``uv tool run
--from wsidicomizer python``), so it imports nothing of ours. The first run converts a small
slide (imports, lazy initialisation); the second converts the benchmark slide, then fsyncs
what it wrote, as every contender does. Prints ``{"timed_s": ...}``.

Usage: ``python peer_warm.py WARMUP_SLIDE SLIDE OUT_DIR [CLI OPTION ...]``
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

from wsidicomizer.cli import main


def convert(source: str, target: str, options: list[str]) -> None:
    main(["-i", source, "-o", target, *options], standalone_mode=False)
    for path in Path(target).rglob("*"):
        if path.is_file():
            with path.open("rb+") as fh:
                os.fsync(fh.fileno())


if __name__ == "__main__":
    warmup, slide, out_dir, *cli_options = sys.argv[1:]
    convert(warmup, out_dir + "-warmup", cli_options)
    shutil.rmtree(out_dir + "-warmup")
    started = time.perf_counter()
    convert(slide, out_dir, cli_options)
    print(json.dumps({"timed_s": time.perf_counter() - started}))
