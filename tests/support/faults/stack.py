"""The suite's whole stack (servers, proxies, pipeline), started once per test session."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from minio import Minio

from slidestream_devstack.buckets import s3_client
from slidestream_devstack.paths import StackPaths, find_repo_root
from tests.support.faults.pipeline import Pipeline
from tests.support.faults.servers import FaultServers

RUN_DIR_NAME = "faults"


def run_dir() -> Path:
    """``<repo>/.local/faults``: the suite's data, logs and results (never the local stack's)."""
    return StackPaths(find_repo_root(None)).local / RUN_DIR_NAME


def results_dir() -> Path:
    return run_dir() / "results"


@dataclass
class FaultStack:
    servers: FaultServers
    pipeline: Pipeline

    @classmethod
    def start(cls) -> FaultStack:
        directory = run_dir()
        shutil.rmtree(results_dir(), ignore_errors=True)
        # The generated slides are kept: the same seed and size paint the same slide.
        for folder in ("data", "client-state"):
            shutil.rmtree(directory / folder, ignore_errors=True)
        servers = FaultServers(directory)
        stack = cls(servers, Pipeline(servers, directory))
        try:
            servers.start()
            stack.pipeline.start()
        except BaseException:
            stack.stop()
            raise
        return stack

    def stop(self) -> None:
        self.pipeline.stop()
        # Servers shut down independently; together, the slowest bounds the wait.
        with ThreadPoolExecutor(max_workers=len(self.servers.processes) or 1) as pool:
            list(pool.map(lambda process: process.stop(), reversed(self.servers.processes)))

    @property
    def run_dir(self) -> Path:
        return self.servers.run_dir

    def s3(self) -> Minio:
        """MinIO itself, not through its proxy."""
        credentials = self.servers.credentials
        return s3_client(
            self.servers.direct_s3_address(),
            credentials.minio_root_user,
            credentials.minio_root_password,
        )

    def heal(self) -> None:
        """Undo whatever a scenario left: every proxy open, every server and service up."""
        self.servers.proxies.reset()
        self.servers.ensure_running()
        self.servers.wait_for_brokers()
        self.pipeline.ensure_running()
