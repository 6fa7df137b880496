"""Scenario (p): tenant B reaches for tenant A's slides through every door.

On the local stack (every service: catalog, search, similarity, inference, the models API),
tenants A and B each upload slides that reach QC and the catalog. Then, with B's token, with no
token and with a malformed one, the scenario calls every route of every service's FastAPI app
(enumerated from ``app.routes``, so a route added later is called too) with A's slide and batch
ids; searches, facets, exports and similarity queries aimed at A's slides (A's own page cursor
included); A's object keys guessed as anonymous S3 URLs on every S3 server and as tus upload
URLs; and A's real tus upload URL (GET, HEAD, PATCH, DELETE).

Every attempt naming A's resource must be refused (401/403/404, or 405 for a method not served
at all), every API call without a valid token refused (401/403) — health and metrics aside —
and no answer may hold a byte of A's data that the request did not carry: A's tenant name, file
names, digests, other slide ids (tus's ``Upload-Metadata`` decoded).
"""

from __future__ import annotations

import csv
import hashlib
import shutil
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.support.faults.apps import service_routes
from tests.support.faults.batch import make_slides
from tests.support.faults.local import MODELS_BUCKET, QUARANTINE_BUCKET, LocalStack, Tenant
from tests.support.faults.probes import (
    Answer,
    Attempt,
    Victim,
    attempts_for,
    key_guesses,
    object_keys,
    save_lines,
    send,
)
from tests.support.faults.scenario import ScenarioResult
from tests.support.faults.stack import results_dir

pytestmark = [pytest.mark.faults, pytest.mark.quick]

A_SLIDES = 2
"""Two, so that A's search has a next page whose cursor B can try."""
MALFORMED = "Bearer ssk_" + "A" * 43
INDEXED = frozenset({"inferred", "indexed"})
"""Inferred by every routed model: every read API (scores, similarity) has A's data."""


def _slides(folder: Path, prefix: str, count: int, seed: int) -> list[Path]:
    """Painted slides under names no other tenant's data holds (the names are markers)."""
    named = []
    for index, painted in enumerate(make_slides(folder / "painted", count, first_seed=seed)):
        target = folder / f"{prefix}-{uuid.uuid4().hex[:10]}-{index}.tiff"
        shutil.copyfile(painted, target)
        named.append(target)
    return named


def _manifest(folder: Path, files: list[Path]) -> Path:
    path = folder / "manifest.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["filename", "sha256", "case_id", "project"])
        for f in files:
            digest = hashlib.sha256(f.read_bytes()).hexdigest()
            writer.writerow([f.name, digest, f"case-{f.stem}", f"proj-{f.stem}"])
    return path


def _upload_tenant(
    local: LocalStack, tenant: Tenant, files: list[Path]
) -> tuple[list[str], str, str]:
    """Slide ids (each at QC and in the catalog), the batch id and one tus upload URL."""
    batch_id = local.create_batch(tenant.token, _manifest(files[0].parent, files))
    slide_ids, tus_url = [], ""
    for path in files:
        slide_id, tus_url = local.upload(tenant.token, path, batch_id=batch_id)
        slide_ids.append(slide_id)
    for slide_id in slide_ids:
        local.wait_for_qc(tenant.token, slide_id)
        local.wait_in_catalog(tenant.token, slide_id, INDEXED)
    return slide_ids, batch_id, tus_url


def _search_attempts(
    local: LocalStack, victim: Victim, b_token: str, a: Tenant, b_slide: str
) -> list[Attempt]:
    """B's own searches aimed at A: by A's ids and names, facets, exports, A's cursor."""
    api = local.env["SEARCH_API"].rstrip("/")
    mine = httpx.get(
        f"{api}/v1/search",
        params={"limit": "1"},
        headers={"Authorization": f"Bearer {a.token}"},
        timeout=60,
    )
    assert mine.status_code == 200, mine.text
    a_cursor = str(mine.json().get("next_cursor") or "")
    assert a_cursor, "A's first page of one slide has no next cursor"
    queries: list[list[tuple[str, str]]] = [
        [("q", victim.slide_id)],
        [("q", victim.tenant)],
        *([("q", m)] for m in victim.markers),
        [("facet", "project"), ("facet", "case_id"), ("facet", "state")],
        [("filter", f"project = proj-{victim.markers[-1]}")],
        [("limit", "1"), ("cursor", a_cursor)],
    ]
    b = {"Authorization": f"Bearer {b_token}"}
    found = [
        Attempt("search", "GET", f"{api}/v1/search", "other-tenant", False, b, params=q)
        for q in queries
    ]
    found += [
        Attempt(
            "export",
            "GET",
            f"{api}/v1/search/export",
            "other-tenant",
            False,
            b,
            params=[("format", fmt), ("q", victim.tenant)],
        )
        for fmt in ("csv", "jsonl")
    ]
    found += _similar_attempts(api, victim, b, a, b_slide)
    return found


def _similar_attempts(
    api: str, victim: Victim, b: dict[str, str], a: Tenant, b_slide: str
) -> list[Attempt]:
    """Similarity by A's slide (refused), by B's own slide and by a patch of A's slide (B's
    neighbours only: A's slides must never come back)."""
    crop = httpx.get(
        f"{api}/v1/slides/{victim.slide_id}/crop",
        params={"x": "0", "y": "0", "size": "512"},
        headers={"Authorization": f"Bearer {a.token}"},
        timeout=60,
    )
    assert crop.status_code == 200, f"A's own crop: {crop.status_code} {crop.text[:200]}"
    url = f"{api}/v1/similar"
    return [
        Attempt(
            "similar A", "POST", url, "other-tenant", True, b, json={"slide_id": victim.slide_id}
        ),
        Attempt(
            "similar B",
            "POST",
            url,
            "other-tenant",
            False,
            b,
            json={"slide_id": b_slide, "k": 50, "include_same_slide": True},
        ),
        Attempt(
            "similar patch",
            "POST",
            f"{url}/patch",
            "other-tenant",
            False,
            b,
            files={"image": ("crop.png", crop.content, "image/png")},
            data={"model": "tile-embedding", "k": "50"},
        ),
    ]


def _object_attempts(
    local: LocalStack, victim: Victim, b_token: str, tus_url: str
) -> tuple[list[Attempt], int]:
    """A's object keys as anonymous S3 URLs and tus URLs; A's real tus upload URL."""
    keys: list[tuple[str, str]] = []
    for s3 in local.s3_servers().values():
        keys += list(object_keys(s3, victim.tenant, frozenset({MODELS_BUCKET})))
    outside = [(b, k) for b, k in keys if b != QUARANTINE_BUCKET]
    assert outside, "A's slides left nothing outside quarantine: nothing to guess"
    endpoints = [local.env["S3_ENDPOINT"], local.env.get("S3_SECONDARY_ENDPOINT", "")]
    urls = key_guesses(local.env["TUS_URL"], [e for e in endpoints if e], sorted(set(keys)))
    tus = {"Tus-Resumable": "1.0.0"}
    credentials = {"none": {}, "other-tenant": {"Authorization": f"Bearer {b_token}"}}
    found = [
        Attempt("object", method, url, who, True, {**tus, **headers})
        for url in urls
        for who, headers in credentials.items()
        for method in ("GET", "HEAD")
    ]
    patch = {"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}
    for who, headers in credentials.items():
        found += [
            Attempt("A's tus URL", method, tus_url, who, True, {**tus, **headers})
            for method in ("GET", "HEAD", "DELETE")
        ]
        found.append(
            Attempt("A's tus URL", "PATCH", tus_url, who, True, {**tus, **headers, **patch})
        )
    return found, len(set(keys))


@pytest.mark.timeout(1200)
def test_tenant_b_gets_nothing_of_tenant_a(local_stack: LocalStack, tmp_path: Path) -> None:
    started = time.time()
    result = ScenarioResult(
        scenario="p-cross-tenant",
        title="Tenant B asks for tenant A's slides",
        injected=(
            "B's token, no token and a malformed one on every route of every service (from "
            "app.routes) with A's slide and batch ids; searches, facets, exports, similarity "
            "and A's page cursor with B's token; A's object keys as anonymous S3 and tus "
            "URLs; A's own tus upload URL"
        ),
        checked=(
            "every attempt naming A's data refused (401/403/404/405), every API call without a "
            "valid token refused (401/403); no answer holds A's tenant, file names, digests or ids"
        ),
    )
    a = local_stack.create_tenant("xt-a")
    b = local_stack.create_tenant("xt-b")
    a_files = _slides(tmp_path / "a", "xta", A_SLIDES, seed=700)
    try:
        local_stack.route_models(a.name)
        local_stack.route_models(b.name)
        a_ids, a_batch, a_tus = _upload_tenant(local_stack, a, a_files)
        b_ids, _, _ = _upload_tenant(local_stack, b, _slides(tmp_path / "b", "xtb", 1, seed=720))
    finally:
        local_stack.unroute()
    digests = [hashlib.sha256(f.read_bytes()).hexdigest() for f in a_files]
    victim = Victim(
        a.name, a_ids[0], a_batch, (a.name, *a_ids, *digests, *(f.stem for f in a_files))
    )
    tokens = {"none": None, "malformed": MALFORMED, "other-tenant": f"Bearer {b.token}"}
    routes = service_routes(tmp_path / "apps", local_stack.env)
    attempts = [x for route in routes for x in attempts_for(route, victim, tokens)]
    attempts += _search_attempts(local_stack, victim, b.token, a, b_ids[0])
    guessed, keys = _object_attempts(local_stack, victim, b.token, a_tus)
    attempts += guessed
    with httpx.Client(timeout=60) as client:
        answers = [send(client, attempt, victim) for attempt in attempts]
    _record(result, answers, routes_count=len(routes), keys=keys, slides=len(a_ids + b_ids))
    result.wall_s = round(time.time() - started, 1)
    result.save()
    assert not result.failures, "\n".join(result.failures)


def _record(
    result: ScenarioResult, answers: list[Answer], *, routes_count: int, keys: int, slides: int
) -> None:
    save_lines(results_dir() / "p-cross-tenant-attempts.txt", answers)
    result.slides = slides
    result.attempts = len(answers)
    result.leaks = sum(1 for a in answers if a.leaked)
    result.failures += [f for a in answers if (f := a.failure()) is not None]
    statuses = Counter(a.status for a in answers)
    result.notes += [
        f"{routes_count} routes (method, path) of 7 listeners enumerated from the apps",
        f"{keys} of A's object keys guessed ({result.attempts} requests)",
        "answers: " + ", ".join(f"{n}× {s}" for s, n in sorted(statuses.items())),
    ]
