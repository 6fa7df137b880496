"""Conversion streams tile by tile: peak memory stays far below one decoded level."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from slidestream_samples.aperio import write_svs

WIDTH_PX, HEIGHT_PX = 8192, 6144
DECODED_LEVEL0_BYTES = WIDTH_PX * HEIGHT_PX * 3
"""144 MiB: what holding level 0 decoded would cost."""

REPO_ROOT = Path(__file__).resolve().parents[4]
_PEAK_RSS = """
from tests.support.memory import own_peak_rss_bytes as PEAK
"""

_CHILD = (
    _PEAK_RSS
    + """
import json, sys
from pathlib import Path
from slidestream_wsi.convert import ConversionOptions, DicomIdentity, convert_slide
from slidestream_wsi.pyramid import open_source
source, out, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
if mode == "convert":
    options = ConversionOptions(run_dciodvfy=False, reopen_check=False)
    result = convert_slide([source], out, DicomIdentity("memory-test"), options)
    generated = sum(level.generated for level in result.levels)
else:
    open_source([source]).close()
    generated = 0
print(json.dumps({"peak": PEAK(), "generated": generated}))
"""
)


def _peak(source: Path, out: Path, mode: str) -> dict[str, int]:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(source), str(out), mode],
        cwd=REPO_ROOT,  # the child imports tests.support
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


FULL_WIDTH_PX, FULL_HEIGHT_PX = 50_000, 40_000
"""The issue's bound: "a 50k x 40k slide converts under 1.5 GiB peak RSS"."""
MAX_PEAK_RSS_BYTES = int(1.5 * 2**30)

_FULL_CHILD = (
    _PEAK_RSS
    + """
import json, sys
from pathlib import Path
from slidestream_wsi.convert import ConversionOptions, DicomIdentity, convert_slide
source, out = Path(sys.argv[1]), Path(sys.argv[2])
result = convert_slide([source], out, DicomIdentity("memory-test-full"), ConversionOptions())
levels = [[lv.width_px, lv.height_px, lv.lossless_copy] for lv in result.levels]
print(json.dumps({"peak": PEAK(), "levels": levels}))
"""
)


def _small_tiles() -> tuple[bytes, ...]:
    """Four real JPEG tiles of nearly flat colour (~1 KB each), so a 50k x 40k slide is tens of
    megabytes on disk while its pyramid has the full tile counts and dimensions."""
    import io

    import numpy as np
    import tifffile

    ramp = np.linspace(200, 230, 512, dtype=np.uint8)
    image = np.dstack([np.tile(ramp, (512, 1))] * 3)
    buffer = io.BytesIO()
    with tifffile.TiffWriter(buffer) as tif:
        tif.write(image, tile=(256, 256), compression="jpeg", photometric="rgb", metadata=None)
    data = buffer.getvalue()
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        page = tif.pages.first
        return tuple(
            data[o : o + n] for o, n in zip(page.dataoffsets, page.databytecounts, strict=True)
        )


def _write_full_size_svs(path: Path) -> Path:
    import itertools

    import numpy as np
    import tifffile

    from slidestream_samples.aperio import aperio_description

    tiles = _small_tiles()
    with tifffile.TiffWriter(path, bigtiff=True) as tif:
        for level in range(2):
            w, h = FULL_WIDTH_PX >> (2 * level), FULL_HEIGHT_PX >> (2 * level)
            count = -(-w // 256) * -(-h // 256)
            tif.write(
                itertools.islice(itertools.cycle(tiles), count),
                shape=(h, w, 3),
                dtype=np.uint8,
                tile=(256, 256),
                compression="jpeg",
                photometric="rgb",
                description=aperio_description(
                    FULL_WIDTH_PX, FULL_HEIGHT_PX, ("AppMag = 40", "MPP = 0.25")
                )
                if level == 0
                else None,
                metadata=None,
            )
    return path


def test_a_50k_by_40k_slide_converts_under_the_issues_memory_bound(tmp_path: Path) -> None:
    source = _write_full_size_svs(tmp_path / "full.svs")
    done = subprocess.run(
        [sys.executable, "-c", _FULL_CHILD, str(source), str(tmp_path / "out")],
        cwd=REPO_ROOT,  # the child imports tests.support
        capture_output=True,
        text=True,
        check=True,
        timeout=900,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["levels"][0] == [FULL_WIDTH_PX, FULL_HEIGHT_PX, True]
    assert len(result["levels"]) >= 8  # 50 000 px down to one tile, the missing ones generated
    assert result["peak"] < MAX_PEAK_RSS_BYTES, f"peak RSS {result['peak'] / 2**20:.0f} MiB"
