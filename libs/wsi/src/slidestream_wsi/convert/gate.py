"""The checks a conversion passes before it counts: the pixel proof of every lossless copy,
and ``dciodvfy`` on every DICOM instance (run while the next level is written)."""

from __future__ import annotations

from pathlib import Path

from slidestream_wsi.convert.copy_pass import LevelOutcome
from slidestream_wsi.convert.targets import level_file_name
from slidestream_wsi.convert.verify import DciodvfyRun, prove_level, start_dciodvfy
from slidestream_wsi.errors import ConformanceError

Proofs = dict[int, dict[str, str]]
"""Per level index: the pixel hash of the source (``source``) and of each copied output."""


class DciodvfyRuns:
    """The ``dciodvfy`` runs of one conversion, each started when its file was closed."""

    def __init__(self, enabled: bool) -> None:
        self._enabled = enabled
        self._runs: list[DciodvfyRun] = []

    def __bool__(self) -> bool:
        return bool(self._runs)

    def start(self, path: Path) -> None:
        if self._enabled:
            self._runs.append(start_dciodvfy(path))

    def stop(self) -> None:
        """A failed conversion stops the runs still going."""
        for run in self._runs:
            run.stop()

    def warnings(self) -> dict[str, list[str]]:
        """Waits for every run; its warnings by file name (raises on an error)."""
        found: dict[str, list[str]] = {}
        for run in self._runs:
            warnings = run.result()
            if warnings:
                found[run.path.name] = warnings
        return found


def prove_copies(outcomes: list[LevelOutcome], out_dir: Path, tiff_path: Path | None) -> Proofs:
    """Decode the sampled tiles of every copied output level again and compare them with the
    source's: a lossless copy must give the same pixels."""
    proofs: Proofs = {}
    for outcome in outcomes:
        if outcome.source_hash is None:
            continue
        outputs = {"source": outcome.source_hash}
        for name, encoding, path in (
            ("dicom", outcome.plan.dicom, out_dir / level_file_name(outcome.plan.index)),
            ("tiff", outcome.plan.tiff, tiff_path),
        ):
            if encoding is None or encoding.mode != "copy" or path is None:
                continue
            level_in_file = 0 if name == "dicom" else outcome.plan.index
            outputs[name] = prove_level(path, level_in_file, outcome.sampled)
            if outputs[name] != outcome.source_hash:
                raise ConformanceError(
                    f"level {outcome.plan.index}: decoded pixels of the {name} output differ "
                    "from the source on a lossless copy"
                )
        proofs[outcome.plan.index] = outputs
    return proofs
