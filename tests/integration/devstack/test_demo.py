"""``make demo`` (``slidestream stack demo``) runs end to end against the real stack."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_demo_uploads_samples_and_follows_them(stack_env: dict[str, str]) -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "slidestream"), "stack", "demo"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    # Exit 0 means every sample went as far as the running services take it and the impostor
    # was rejected (the demo counts surprises and exits 1 on any).
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "unsupported-format" in result.stdout
    # The painted H&E-like section passes the quality gate and is analysed by the reference
    # models (`make test` builds them first); the millimetre-wide planted-PHI samples stop at
    # QC (too little tissue). Each shows its verdict and its QC pictures.
    assert "✓ model tissue-type pushed, loaded (canary) and routed" in result.stdout
    assert "inferred" in result.stdout and "tissue-type v1" in result.stdout
    assert "qc_failed" in result.stdout
    repo = Path(__file__).resolve().parents[3]
    summary = repo / ".local" / "demo" / "qc" / "he-section.tiff" / "report.html"
    assert summary.is_file()
    assert (summary.parent / "overlay.png").read_bytes().startswith(b"\x89PNG")
    heat_maps = sorted(summary.parent.glob("tissue-type-heatmap-*.png"))
    assert len(heat_maps) == 5  # one per tissue type, beside the QC pictures
    assert all(path.read_bytes().startswith(b"\x89PNG") for path in heat_maps)
    assert stack_env["UPLOAD_API"] in result.stdout.replace("\n", "")
    # It ends with the catalogue searched: the facet table of the demo tenant, and slides with
    # tissue like a planted tumour square, each hit checked against the planted truth.
    assert "scanner_vendor" in result.stdout and "H&E" in result.stdout
    assert "slides similar to tumour" in result.stdout
    assert "planted slides found on tumour" in result.stdout
