"""Conversion streams tile by tile: peak memory stays far below one decoded level."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.unit.deid.slides import write_svs

WIDTH_PX, HEIGHT_PX = 8192, 6144
DECODED_LEVEL0_BYTES = WIDTH_PX * HEIGHT_PX * 3
"""144 MiB: what holding level 0 decoded would cost."""

_CHILD = """
import json, resource, sys
from pathlib import Path
from slidestream_wsi.convert import ConversionOptions, DicomIdentity, convert_slide
from slidestream_wsi.convert.source import open_source
source, out, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
if mode == "convert":
    options = ConversionOptions(run_dciodvfy=False, reopen_check=False)
    result = convert_slide([source], out, DicomIdentity("memory-test"), options)
    generated = sum(level.generated for level in result.levels)
else:
    open_source([source]).close()
    generated = 0
print(json.dumps({"peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                  "generated": generated}))
"""


def _peak(source: Path, out: Path, mode: str) -> dict[str, int]:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(source), str(out), mode],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    result: dict[str, int] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_peak_memory_is_bounded_by_bands_not_levels(tmp_path: Path) -> None:
    source = write_svs(tmp_path / "big.svs", WIDTH_PX, HEIGHT_PX, levels=2)
    baseline = _peak(source, tmp_path / "none", "open")
    converted = _peak(source, tmp_path / "out", "convert")
    # Level 1 is decoded to generate the levels below it, and both outputs are written.
    assert converted["generated"] >= 4
    growth = converted["peak"] - baseline["peak"]
    assert growth < DECODED_LEVEL0_BYTES / 3, f"peak grew by {growth / 2**20:.0f} MiB"
