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
    # The painted H&E-like section passes the quality gate; the millimetre-wide planted-PHI
    # samples stop there (too little tissue). Both show their verdict and their QC pictures.
    assert "qc_passed" in result.stdout
    assert "qc_failed" in result.stdout
    repo = Path(__file__).resolve().parents[3]
    summary = repo / ".local" / "demo" / "qc" / "he-section.tiff" / "report.html"
    assert summary.is_file()
    assert (summary.parent / "overlay.png").read_bytes().startswith(b"\x89PNG")
    assert stack_env["UPLOAD_API"] in result.stdout.replace("\n", "")
