"""Upload throughput: the partner CLI through tusd vs a direct MinIO SDK multipart upload.

Same machine, same object store, same file, same run. For each size:

* ``direct``: ``minio.Minio.fput_object`` into the quarantine bucket (the floor: one client, one
  server, no resumability, no verification);
* ``cli transfer``: ``slidestream upload FILE --verify-timeout 0``: the CLI as a partner
  installs it (a virtual environment with only ``slidestream-client``), its start, the client's
  sha256 of the file and the tus transfer through tusd into MinIO, until tusd has stored the last
  byte;
* ``cli end to end``: the same, plus waiting for the server's verification (magic bytes, sha256
  of the stored object) and ``slides.uploaded.v1``;
* ``cli resumed``: the CLI killed with SIGKILL at ~50 % of the bytes, then run again, until the
  server's verdict; the time of both runs together.

Client peak RSS is measured with GNU time (``%M``) around the CLI process.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from uuid import uuid4

import httpx
from minio import Minio

from slidestream_devstack import stack
from tests.support.bench_report import write_section

BLOCK_BYTES = 64 * 1024 * 1024
GIB = 1024**3
ROOT = Path(__file__).resolve().parents[2]
CLIENT_VENV = ROOT / ".local" / "bench" / "client-venv"
ADMIN_CLI = str(Path(sys.executable).parent / "slidestream")
CLI = str(CLIENT_VENV / "bin" / "slidestream")


def partner_cli() -> None:
    """The client as partners install it: only slidestream-client and what it needs (rebuilt
    from the working tree on every run, so the benchmark measures the current code)."""
    subprocess.run(["uv", "venv", "-q", "--clear", "-p", "3.11", str(CLIENT_VENV)], check=True)
    subprocess.run(
        [
            "uv",
            "pip",
            "install",
            "-q",
            "-p",
            str(CLIENT_VENV / "bin" / "python"),
            str(ROOT / "libs" / "contracts"),
            str(ROOT / "libs" / "client"),
        ],
        check=True,
    )


def make_file(path: Path, size_bytes: int) -> None:
    """A TIFF signature then incompressible bytes (a 64 MiB random block, repeated)."""
    block = os.urandom(BLOCK_BYTES)
    with path.open("wb") as handle:
        handle.write(b"II*\x00")
        written = 4
        while written < size_bytes:
            chunk = block[: min(BLOCK_BYTES, size_bytes - written)]
            handle.write(chunk)
            written += len(chunk)


def tenant_token() -> str:
    created = subprocess.run(
        [ADMIN_CLI, "admin", "tenant", "create", f"bench-{uuid4().hex[:8]}", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    return str(json.loads(created.stdout)["token"])


def direct_upload(env: dict[str, str], path: Path) -> float:
    client = Minio(
        env["S3_ENDPOINT"].split("://", 1)[1],
        env["S3_ACCESS_KEY"],
        env["S3_SECRET_KEY"],
        secure=False,
    )
    key = f"bench/{uuid4()}"
    started = time.perf_counter()
    client.fput_object("quarantine", key, str(path), part_size=64 * 1024 * 1024)
    elapsed = time.perf_counter() - started
    client.remove_object("quarantine", key)
    return elapsed


def cli_command(
    env: dict[str, str], token: str, path: Path, state_dir: Path, *, wait: bool = True
) -> list[str]:
    command = [
        "/usr/bin/time",
        "-f",
        "%M",
        CLI,
        "upload",
        str(path),
        "--json",
        "--api",
        env["UPLOAD_API"],
        "--token",
        token,
        "--state-dir",
        str(state_dir),
    ]
    # --verify-timeout 0: report as soon as tusd holds the last byte (transfer only).
    return command if wait else [*command, "--verify-timeout", "0"]


def cli_upload(
    env: dict[str, str], token: str, path: Path, state_dir: Path, *, wait: bool = True
) -> tuple[float, int]:
    started = time.perf_counter()
    result = subprocess.run(
        cli_command(env, token, path, state_dir, wait=wait),
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"CLI upload failed: {result.stdout[-500:]} {result.stderr[-500:]}")
    peak_rss_kib = int(result.stderr.strip().splitlines()[-1])
    return elapsed, peak_rss_kib


def cli_resumed(env: dict[str, str], token: str, path: Path, state_dir: Path) -> float:
    """Kill the CLI at ~50 % of the bytes (as the server counts them), then rerun it."""
    size = path.stat().st_size
    started = time.perf_counter()
    process = subprocess.Popen(
        cli_command(env, token, path, state_dir), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    headers = {"Authorization": f"Bearer {token}"}
    slide_id = None
    while process.poll() is None:
        for state_file in state_dir.rglob("*.json"):
            try:
                slide_id = json.loads(state_file.read_text()).get("slide_id") or slide_id
            except (ValueError, OSError):
                continue
        if slide_id:
            received = httpx.get(
                f"{env['UPLOAD_API']}/v1/uploads/{slide_id}", headers=headers
            ).json()
            if received.get("received_bytes", 0) >= size // 2:
                break
        time.sleep(0.1)
    # GNU time is the parent; kill the whole process group's CLI.
    subprocess.run(["pkill", "-KILL", "-P", str(process.pid)], check=False)
    process.send_signal(signal.SIGKILL)
    process.wait()
    result = subprocess.run(
        cli_command(env, token, path, state_dir), capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"resumed CLI upload failed: {result.stdout[-500:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes-gib", type=float, nargs="+", default=[1.0, 4.0])
    args = parser.parse_args()
    env = stack.up()
    partner_cli()
    token = tenant_token()
    rows: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-upload-") as work:
        for size_gib in args.sizes_gib:
            size = int(size_gib * GIB)
            path = Path(work) / f"slide-{size_gib:g}g.tiff"
            make_file(path, size)
            direct_s = direct_upload(env, path)
            transfer_s, rss_kib = cli_upload(
                env, token, path, Path(work) / f"state-{size_gib}-t", wait=False
            )
            cli_s, _ = cli_upload(env, token, path, Path(work) / f"state-{size_gib}-a")
            # A different file content would be a different upload: reuse the file, new state.
            resumed_s = cli_resumed(env, token, path, Path(work) / f"state-{size_gib}-b")
            mib = size / 1024**2
            rows.append(
                f"| {size_gib:g} GiB | {direct_s:.1f} s ({mib / direct_s:.0f} MiB/s) | "
                f"{transfer_s:.1f} s ({mib / transfer_s:.0f} MiB/s) | "
                f"**{direct_s / transfer_s:.2f}×** | "
                f"{cli_s:.1f} s ({mib / cli_s:.0f} MiB/s) | {direct_s / cli_s:.2f}× | "
                f"{resumed_s:.1f} s | **{resumed_s / cli_s:.2f}×** | {rss_kib / 1024:.0f} MiB |"
            )
            print(rows[-1], flush=True)
            path.unlink()
    body = (
        "| size | direct `fput_object` | CLI transfer | transfer throughput ÷ direct "
        "(goal ≥ 0.9) | CLI end to end | end to end ÷ direct | killed at ~50 % + resumed "
        "| resumed ÷ uninterrupted end to end (goal ≤ 1.1) | CLI peak RSS |\n"
        "|---|---|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
        "*CLI transfer* counts the CLI's start, its sha256 of the file and the tus transfer "
        "through tusd; *end to end* adds the server's verification (magic bytes, sha256 of the "
        "stored object) and `slides.uploaded.v1`. The direct upload does none of these."
    )
    write_section("upload", "make bench-upload", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
