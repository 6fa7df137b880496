"""The running local stack (``slidestream stack up``) for the fault suite's security scenarios
(p, q, o): they need every service — catalog, search, inference, the models API — which the
suite's own stack does not run, and they break nothing, so they share the developer's stack
(q's brute force through the catalog may throttle the catalog's token lookups for a second: the
upload API limits the catalog's address).

The stack is the one the integration tests use (the ``stack_env`` fixture: started if it is not
running, adopted if it is; never stopped or restarted here), under the repository root or
under ``SLIDESTREAM_HOME`` when set (a second checkout using the first one's stack).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from minio import Minio

from slidestream_client.sdk import SlidestreamClient
from slidestream_contracts.states import Stage
from slidestream_devstack.buckets import s3_client
from slidestream_devstack.paths import StackPaths, find_repo_root
from slidestream_devstack.settings import DevstackSettings
from tests.support.faults.ledger import Ledger

SLIDESTREAM = Path(sys.executable).with_name("slidestream")
ADMIN_TIMEOUT_S = 120
QC_TIMEOUT_S = 600.0
QUARANTINE_BUCKET = "quarantine"
"""Where originals wait for de-identification: the one bucket allowed to hold PHI."""
MODELS_BUCKET = "models"
PAST_QC = frozenset({"qc_passed", "qc_warned", "qc_failed", "inferred", "indexed"})
"""A slide that reached QC (and perhaps went on to inference)."""
REQUIRED_ENV = (
    "UPLOAD_API",
    "CATALOG_API",
    "SEARCH_API",
    "DEID_API",
    "CONVERT_API",
    "QC_API",
    "INFERENCE_API",
    "TUS_URL",
    "KAFKA_BOOTSTRAP",
    "POSTGRES_URL",
    "MODELS_TOKEN_FILE",
)
"""Every service the security scenarios call, and what they read the platform's data from."""


@dataclass(frozen=True, slots=True)
class Tenant:
    name: str
    token: str
    token_id: str


@dataclass
class LocalStack:
    """Endpoints and credentials of the running local stack, and what a scenario does there."""

    env_file: Path
    env: dict[str, str]
    work_dir: Path
    tenants: list[Tenant] = field(default_factory=list)
    routed: list[tuple[str, str]] = field(default_factory=list)
    """(model, tenant) routes this session made, removed by :meth:`unroute`."""

    @classmethod
    def of(cls, env: dict[str, str], work_dir: Path) -> LocalStack:
        """The stack whose ``stack.env`` mapping is ``env`` (``stack_env``: up and ready)."""
        missing = [key for key in REQUIRED_ENV if key not in env]
        assert not missing, f"the local stack runs without {', '.join(missing)}"
        paths = StackPaths(find_repo_root(DevstackSettings().home))
        return cls(paths.env_file, env, work_dir)

    def admin(self, *args: str, answers: bool = True) -> dict[str, object]:
        """``slidestream admin <args>`` against this stack; its JSON answer (``--json``) when
        the command ``answers`` one."""
        argv = [str(SLIDESTREAM), "admin", *args, "--env-file", str(self.env_file)]
        done = subprocess.run(
            argv + (["--json"] if answers else []),
            capture_output=True,
            text=True,
            timeout=ADMIN_TIMEOUT_S,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        if not answers:
            return {}
        answer = json.loads(done.stdout.strip().splitlines()[-1])
        assert isinstance(answer, dict)
        return answer

    def create_tenant(self, prefix: str, *extra: str) -> Tenant:
        created = self.admin("tenant", "create", f"{prefix}-{uuid.uuid4().hex[:8]}", *extra)
        tenant = Tenant(str(created["tenant"]), str(created["token"]), str(created["token_id"]))
        self.tenants.append(tenant)
        return tenant

    def client(self, token: str) -> SlidestreamClient:
        state = self.work_dir / "client-state" / uuid.uuid4().hex[:8]
        return SlidestreamClient(self.env["UPLOAD_API"], token, state_dir=state)

    def upload(
        self,
        token: str,
        path: Path,
        *,
        meta: dict[str, str] | None = None,
        batch_id: str | None = None,
    ) -> tuple[str, str]:
        """Upload ``path`` (verified); its slide id and the tus upload URL it was sent to."""
        with self.client(token) as client:
            result = client.upload_file(
                path, batch_id=batch_id, meta=meta, verify_timeout_s=QC_TIMEOUT_S
            )
            tus_url = next((str(u["url"]) for u in _state_records(client) if "url" in u), "")
        assert result.slide_id, f"{path.name}: no slide id ({result.upload_state})"
        return result.slide_id, tus_url

    def create_batch(self, token: str, manifest: Path) -> str:
        with self.client(token) as client:
            return client.create_batch(manifest).batch_id

    def wait_for_qc(self, token: str, slide_id: str) -> str:
        """The slide's state once it reached QC (any verdict, or later; a refusal fails)."""
        with self.client(token) as client:
            waited = client.wait(slide_id, Stage.QC, timeout_s=QC_TIMEOUT_S)
        state = waited.status.state
        assert state is not None and state.value in PAST_QC, waited
        return str(state.value)

    def s3_servers(self) -> dict[str, Minio]:
        """Every S3 server of the stack (MinIO, and the secondary replica when it runs)."""
        servers = {"minio": self._s3("S3_ENDPOINT", "S3_ACCESS_KEY", "S3_SECRET_KEY")}
        if "S3_SECONDARY_ENDPOINT" in self.env:
            servers["secondary"] = self._s3(
                "S3_SECONDARY_ENDPOINT", "S3_SECONDARY_ACCESS_KEY", "S3_SECONDARY_SECRET_KEY"
            )
        return servers

    def _s3(self, endpoint: str, access: str, secret: str) -> Minio:
        return s3_client(urlsplit(self.env[endpoint]).netloc, self.env[access], self.env[secret])

    def ledger(self) -> Ledger:
        return Ledger.read(self.env["KAFKA_BOOTSTRAP"])

    def wait_in_catalog(
        self, token: str, slide_id: str, states: frozenset[str], timeout_s: float = 300.0
    ) -> str:
        """Until the catalog answers the slide to its own tenant in one of ``states``."""
        url = f"{self.env['CATALOG_API']}/slides/{slide_id}"
        deadline = time.monotonic() + timeout_s
        state = ""
        while time.monotonic() < deadline:
            answer = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
            state = str(answer.json().get("state", "")) if answer.status_code == 200 else ""
            if state in states:
                return state
            time.sleep(2.0)
        raise AssertionError(f"{slide_id}: {state or 'not'} in the catalog, not {set(states)}")

    def _models(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        token = Path(self.env["MODELS_TOKEN_FILE"]).read_text(encoding="utf-8").strip()
        return httpx.request(
            method,
            f"{self.env['INFERENCE_API'].rstrip('/')}/v1{path}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
            **kwargs,  # type: ignore[arg-type]
        )

    def route_models(self, tenant: str) -> None:
        """Every model of the models API runs on ``tenant``'s slides (any QC verdict)."""
        for model in self._models("GET", "/models").json()["models"]:
            body = {"tenant": tenant, "min_qc": "warn"}
            answer = self._models("PUT", f"/routes/{model['name']}", json=body)
            assert answer.status_code == 200, answer.text
            self.routed.append((str(model["name"]), tenant))

    def unroute(self) -> None:
        for name, tenant in self.routed:
            self._models("DELETE", f"/routes/{name}", params={"tenant": tenant})
        self.routed.clear()


def _state_records(client: SlidestreamClient) -> list[dict[str, object]]:
    """The client's saved uploads (each with its tus URL)."""
    folder = client.store.root / "uploads"
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
