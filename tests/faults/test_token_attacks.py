"""Scenario (q): stolen, guessed and outlived tokens.

On the local stack:

* **brute force**: wrong tokens as fast as one client sends them, from an address of their own
  (127.0.0.2, each with a forged ``X-Forwarded-For``), at the upload API and through the
  catalog (which asks the upload API). Rate limiting must engage — 429 with ``Retry-After`` —
  and the right token must work again once the window passed. (Tokens are looked up by their
  SHA-256, secrets compared with ``hmac.compare_digest``; no timing is measured here.)
* **replay**: a revoked token, an expired one and one rotated away (``slidestream admin token
  rotate --grace``) must be refused by every API once the grace ended and the catalog's token
  cache (``token_cache_s``) could have forgotten it; the new token works.
* **tus URLs**: tenant A's upload URL — a finished upload and one half sent — must refuse
  HEAD and PATCH with B's token and with none.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.faults.batch import make_slides
from tests.support.faults.local import LocalStack, Tenant
from tests.support.faults.scenario import ScenarioResult

pytestmark = pytest.mark.faults
"""Not in the quick subset: waiting out grace, lifetime and token cache takes two minutes."""

ATTACKER_ADDRESS = "127.0.0.2"
"""Loopback, but not the address every other client of the local stack uses."""
MAX_GUESSES = 1500
PARALLEL_GUESSES = 24
"""An attacker does not wait for each answer: the address's bucket (20/s, burst 100 by
default) must empty faster than the service answers a wrong token."""
CATALOG_CACHE_S = 30.0
"""``CatalogSettings.token_cache_s``: how long the catalog may still honour a dropped token."""
GRACE_S = 20
EXPIRES_S = 20
"""Long enough for the token to be used everywhere first on a busy two-core machine."""
REFUSED = frozenset({401, 403, 404})


def _guess(client: httpx.Client, url: str, limit: int) -> tuple[int, httpx.Response | None]:
    """Wrong tokens, :data:`PARALLEL_GUESSES` at a time, until one answers 429 (that answer)
    or ``limit`` were sent (None)."""
    stop = threading.Event()

    def one(sent: int) -> httpx.Response | None:
        if stop.is_set():
            return None
        token = f"ssk_{uuid.uuid4().hex}{uuid.uuid4().hex[:11]}"
        forged = f"10.{sent % 250}.{sent // 250}.7"
        answer = client.get(
            url, headers={"Authorization": f"Bearer {token}", "X-Forwarded-For": forged}
        )
        if answer.status_code == 429:
            stop.set()
        return answer

    with ThreadPoolExecutor(max_workers=PARALLEL_GUESSES) as pool:
        answers = [a for a in pool.map(one, range(limit)) if a is not None]
    limited = next((a for a in answers if a.status_code == 429), None)
    wrong = sorted({a.status_code for a in answers} - {401, 429})
    assert not wrong, f"wrong tokens answered {wrong}"
    return len(answers), limited


def _brute_force(local: LocalStack, tenant: Tenant, result: ScenarioResult) -> None:
    transport = httpx.HTTPTransport(local_address=ATTACKER_ADDRESS)
    targets = {
        "upload": f"{local.env['UPLOAD_API']}/v1/info",
        "catalog": f"{local.env['CATALOG_API']}/v1/search",
    }
    with httpx.Client(transport=transport, timeout=60) as client:
        for name, url in targets.items():
            sent, limited = _guess(client, url, MAX_GUESSES)
            result.attempts = (result.attempts or 0) + sent
            if limited is None:
                result.failures.append(f"{name}: {sent} wrong tokens, never a 429")
                continue
            retry_after = limited.headers.get("Retry-After", "")
            if not retry_after.isdigit() or int(retry_after) < 1:
                result.failures.append(f"{name}: 429 without a Retry-After ({retry_after!r})")
                retry_after = "1"
            time.sleep(int(retry_after) + 1)
            good = client.get(url, headers={"Authorization": f"Bearer {tenant.token}"})
            result.notes.append(
                f"{name}: 429 after {sent} wrong tokens (Retry-After {retry_after} s); the "
                f"right token then answered {good.status_code}"
            )
            if good.status_code != 200:
                result.failures.append(f"{name}: right token after the window: {good.status_code}")


def _every_api(local: LocalStack, slide_id: str) -> dict[str, str]:
    """A GET per API that takes a partner token, aimed at the tenant's own slide."""
    return {
        "upload info": f"{local.env['UPLOAD_API']}/v1/info",
        "upload slide": f"{local.env['UPLOAD_API']}/v1/slides/{slide_id}",
        "upload status": f"{local.env['UPLOAD_API']}/v1/uploads/{slide_id}",
        "catalog slide": f"{local.env['CATALOG_API']}/slides/{slide_id}",
        "search": f"{local.env['SEARCH_API']}/v1/search",
        "export": f"{local.env['SEARCH_API']}/v1/search/export",
    }


def _answers(local: LocalStack, slide_id: str, token: str) -> dict[str, int]:
    """Each API's status to ``token`` (a tus creation included)."""
    headers = {"Authorization": f"Bearer {token}"}
    statuses = {
        name: httpx.get(url, headers=headers, timeout=60).status_code
        for name, url in _every_api(local, slide_id).items()
    }
    created = _tus_create_for(local, token, "probe.tiff", b"\0" * 1024)
    statuses["tus create"] = created.status_code
    if created.status_code == 201:  # the tenant's own: cancelled at once
        url = httpx.URL(local.env["TUS_URL"]).join(created.headers["Location"])
        httpx.delete(url, headers={**headers, "Tus-Resumable": "1.0.0"}, timeout=60)
    return statuses


def _issue(local: LocalStack, *args: str) -> tuple[str, str]:
    """``admin token <args>``: (token id, token)."""
    issued = local.admin("token", *args)
    return str(issued["token_id"]), str(issued["token"])


def _refused_everywhere(
    local: LocalStack, slide_id: str, tokens: dict[str, str], result: ScenarioResult
) -> tuple[int, int]:
    """Each token on every API: (answers, answers that refused it)."""
    tried = refused = 0
    for label, token in tokens.items():
        answers = _answers(local, slide_id, token)
        let_in = {api: status for api, status in answers.items() if status not in REFUSED}
        tried, refused = tried + len(answers), refused + len(answers) - len(let_in)
        result.failures += [f"{label} token: {api} answered {s}" for api, s in let_in.items()]
    result.attempts = (result.attempts or 0) + tried
    result.leaks = (result.leaks or 0) + tried - refused
    return tried, refused


def _works_everywhere(local: LocalStack, slide_id: str, label: str, token: str) -> list[str]:
    answers = _answers(local, slide_id, token)
    return [f"{label} token: {api} answered {s}" for api, s in answers.items() if s >= 300]


def _replay(local: LocalStack, tenant: Tenant, slide_id: str, result: ScenarioResult) -> None:
    revoked_id, revoked = _issue(local, "create", tenant.name, "--label", "to-revoke")
    rotated_id, rotated = _issue(local, "create", tenant.name, "--label", "to-rotate")
    _, expiring = _issue(local, "create", tenant.name, "--expires-in", f"{EXPIRES_S}s")
    expires_at = time.monotonic() + EXPIRES_S
    for label, token in (("expiring", expiring), ("revoked", revoked), ("rotated", rotated)):
        # Used first, so the catalog has each in its cache when it is dropped.
        result.failures += _works_everywhere(local, slide_id, f"{label} (before)", token)
    local.admin("token", "revoke", revoked_id, answers=False)
    _, successor = _issue(local, "rotate", rotated_id, "--grace", f"{GRACE_S}s")
    grace_ends = time.monotonic() + GRACE_S
    in_grace = httpx.get(
        f"{local.env['UPLOAD_API']}/v1/info",
        headers={"Authorization": f"Bearer {rotated}"},
        timeout=60,
    ).status_code
    if in_grace != 200:
        result.failures.append(f"the rotated token answered {in_grace} within its grace")
    # Past the grace, the lifetime, and the catalog's cache of the last good answer.
    time.sleep(max(0.0, max(grace_ends, expires_at) - time.monotonic()) + CATALOG_CACHE_S + 2)
    tokens = {"revoked": revoked, "expired": expiring, "rotated-away": rotated}
    tried, refused = _refused_everywhere(local, slide_id, tokens, result)
    result.failures += _works_everywhere(local, slide_id, "successor", successor)
    result.notes.append(
        f"revoked, expired ({EXPIRES_S} s) and rotated (grace {GRACE_S} s) tokens, each used "
        f"on {len(_every_api(local, slide_id)) + 1} APIs first: {refused} of {tried} answers "
        f"refused them once {CATALOG_CACHE_S:.0f} s of catalog cache passed; within its grace "
        f"the rotated one answered {in_grace}"
    )


def _half_sent_upload(local: LocalStack, token: str, path: Path) -> str:
    """A tus upload of ``path`` with its first half sent: its URL."""
    data = path.read_bytes()
    created = _tus_create_for(local, token, path.name, data)
    assert created.status_code == 201, created.text
    url = httpx.URL(local.env["TUS_URL"]).join(created.headers["Location"])
    half = len(data) // 2
    sent = _patch(str(url), {"Authorization": f"Bearer {token}"}, 0, data[:half])
    assert sent.status_code == 204, sent.text
    return str(url)


def _tus_create_for(local: LocalStack, token: str, name: str, data: bytes) -> httpx.Response:
    meta = {"filename": name, "sha256": hashlib.sha256(data).hexdigest()}
    encoded = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in meta.items())
    return httpx.post(
        local.env["TUS_URL"],
        headers={
            "Authorization": f"Bearer {token}",
            "Tus-Resumable": "1.0.0",
            "Upload-Length": str(len(data)),
            "Upload-Metadata": encoded,
        },
        timeout=60,
    )


def _patch(url: str, headers: dict[str, str], offset: int, body: bytes) -> httpx.Response:
    return httpx.patch(
        url,
        headers={
            **headers,
            "Tus-Resumable": "1.0.0",
            "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream",
        },
        content=body,
        timeout=60,
    )


def _tus_urls(
    local: LocalStack, a: Tenant, b: Tenant, urls: dict[str, str], result: ScenarioResult
) -> None:
    """HEAD and PATCH of A's upload URLs with B's token and with none: all refused."""
    for label, url in urls.items():
        offset = httpx.head(
            url, headers={"Tus-Resumable": "1.0.0", "Authorization": f"Bearer {a.token}"}
        ).headers.get("Upload-Offset", "0")
        for who, headers in (("B's token", {"Authorization": f"Bearer {b.token}"}), ("none", {})):
            head = httpx.head(url, headers={**headers, "Tus-Resumable": "1.0.0"}, timeout=60)
            patch = _patch(url, headers, int(offset or 0), b"\xff" * 1024)
            for method, answer in (("HEAD", head), ("PATCH", patch)):
                result.attempts = (result.attempts or 0) + 1
                if answer.status_code not in REFUSED:
                    result.leaks = (result.leaks or 0) + 1
                    result.failures.append(
                        f"{who}: {method} of A's {label} upload URL answered {answer.status_code}"
                    )


@pytest.mark.timeout(900)
def test_guessed_outlived_and_foreign_tokens_are_refused(
    local_stack: LocalStack, tmp_path: Path
) -> None:
    started = time.time()
    result = ScenarioResult(
        scenario="q-token-attacks",
        title="Token brute force, replay, foreign tus URLs",
        injected=(
            f"up to {MAX_GUESSES} wrong tokens from one address (forged X-Forwarded-For) at the "
            "upload API and the catalog; revoked, expired and rotated-away tokens replayed; "
            "HEAD/PATCH of A's tus upload URLs (finished, half sent) with B's token and none"
        ),
        checked=(
            "429 with Retry-After, right token works after it; every dropped token refused by "
            "every API after grace and cache; every foreign tus request refused"
        ),
        attempts=0,
        leaks=0,
    )
    a = local_stack.create_tenant("tq-a")
    b = local_stack.create_tenant("tq-b")
    slides = make_slides(tmp_path / "slides", 2, first_seed=740)
    slide_id, finished_url = local_stack.upload(a.token, slides[0])
    local_stack.wait_for_qc(a.token, slide_id)
    result.slides = 1
    _brute_force(local_stack, a, result)
    _replay(local_stack, a, slide_id, result)
    urls = {
        "finished": finished_url,
        "half-sent": _half_sent_upload(local_stack, a.token, slides[1]),
    }
    _tus_urls(local_stack, a, b, urls, result)
    httpx.delete(
        urls["half-sent"], headers={"Authorization": f"Bearer {a.token}", "Tus-Resumable": "1.0.0"}
    )
    result.wall_s = round(time.time() - started, 1)
    result.save()
    assert not result.failures, "\n".join(result.failures)
