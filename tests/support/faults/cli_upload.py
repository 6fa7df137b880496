"""The partner's CLI, ``slidestream upload --json``, run as a process of its own so that it can
be killed mid-transfer (SIGKILL: no handler, no cleanup) and run again as a partner reruns it.

What a run did is read from its JSON line (``bytes_sent``, ``resumed_from_bytes``); what it
left behind from its state directory (the upload's URL and slide id, :mod:`slidestream_client.
state`); how far the transfer got from the upload service (``received_bytes``, which tusd's
``post-receive`` hooks keep up to date).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slidestream_client.errors import SlidestreamError
from slidestream_client.sdk import SlidestreamClient
from slidestream_client.state import UploadRecord
from slidestream_devstack.process import child_env
from tests.support.faults.pipeline import SLIDESTREAM

POLL_S = 0.5
CLI_TIMEOUT_S = 600.0


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class CliUpload:
    """One file's ``slidestream upload``, run once or more with the same state directory."""

    api: str
    token: str
    path: Path
    state_dir: Path
    log_dir: Path
    process: subprocess.Popen[bytes] | None = None
    runs: list[dict[str, Any]] = field(default_factory=list)
    """Each finished run's JSON line (a killed run leaves none)."""
    started: int = 0

    def _out(self, suffix: str) -> Path:
        return self.log_dir / f"cli-{self.path.stem}-{self.started}.{suffix}"

    def start(self) -> CliUpload:
        assert self.process is None or self.process.poll() is not None, "a run is going on"
        self.started += 1
        self.log_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            str(SLIDESTREAM),
            "upload",
            str(self.path),
            "--json",
            "--api",
            self.api,
            "--state-dir",
            str(self.state_dir),
        ]
        env = child_env({"SLIDESTREAM_TOKEN": self.token})
        with self._out("out").open("wb") as out, self._out("err").open("wb") as err:
            self.process = subprocess.Popen(argv, stdout=out, stderr=err, env=env)
        return self

    def kill(self) -> float:
        """SIGKILL the running CLI, waited for; the epoch second it was sent."""
        assert self.process is not None
        killed_at = time.time()
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=CLI_TIMEOUT_S)
        return killed_at

    def finish(self, timeout_s: float = CLI_TIMEOUT_S) -> dict[str, Any]:
        """Wait for the run to end; its JSON line (fails with its stderr if it wrote none)."""
        assert self.process is not None
        code = self.process.wait(timeout=timeout_s)
        lines = self._out("out").read_text(encoding="utf-8").strip().splitlines()
        stderr = self._out("err").read_text(encoding="utf-8")[-2000:]
        assert lines, f"the CLI (exit {code}) printed no result: {stderr}"
        result: dict[str, Any] = json.loads(lines[-1])
        result["exit_code"] = code
        self.runs.append(result)
        return result

    def record(self) -> UploadRecord | None:
        """What the state directory remembers of the upload (URL, slide id), if anything."""
        for entry in sorted((self.state_dir / "uploads").glob("*.json")):
            if not entry.name.startswith("."):
                return UploadRecord.model_validate_json(entry.read_text(encoding="utf-8"))
        return None

    def received_bytes(self) -> int:
        """The bytes the upload service says tusd has received (0 before the upload exists)."""
        record = self.record()
        if record is None or record.slide_id is None:
            return 0
        try:
            with SlidestreamClient(self.api, self.token, state_dir=self.log_dir) as client:
                return client.upload_status(record.slide_id).received_bytes
        except SlidestreamError:
            return 0

    def wait_received(self, share: float, timeout_s: float) -> int:
        """Poll until ``share`` of the file has reached tusd; the bytes received then."""
        wanted = share * self.path.stat().st_size
        deadline = time.monotonic() + timeout_s
        received = 0
        while time.monotonic() < deadline:
            received = self.received_bytes()
            if received >= wanted:
                return received
            assert self.process is not None and self.process.poll() is None, (
                f"the CLI ended before {share:.0%} of the file was received ({received} bytes)"
            )
            time.sleep(POLL_S)
        raise AssertionError(f"{received} bytes received after {timeout_s:.0f} s")
