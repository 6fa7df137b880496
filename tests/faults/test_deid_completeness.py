"""Scenario (o): PHI where nobody planted it before, through the whole running pipeline.

Three slides generated here (:mod:`tests.support.faults.phi_slides`) carry invented identities
in places the unit tests and the samples never used: a painted TIFF (PHI in level 1's
ImageDescription, XMP on level 2, an unknown private tag, a UTF-16 string in an UNDEFINED tag,
the file name, the upload's free ``meta``, the manifest's case id and a ``project`` repeating
it), an Aperio SVS (properties no scanner writes, PHI on a lower level) and a zipped DICOM
series (a name three sequences deep, private blocks of another group and inside a sequence
item, the label instance's patient name alone, PHI member names).

Uploaded to the local stack and routed to every model, each must reach QC, and inference
unless QC failed it; then
every byte kept about them outside quarantine — objects on every S3 server, records on every
topic, catalog/inference/QC/convert rows, the catalog's answers — is searched for every PHI
string (and the samples' own), case-insensitively, in UTF-8 and UTF-16. None may be found.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from slidestream_samples.phi import TOKENS
from tests.support.faults.local import QUARANTINE_BUCKET, LocalStack
from tests.support.faults.phi_scan import (
    Findings,
    Needles,
    scan_catalog,
    scan_events,
    scan_objects,
    scan_rows,
)
from tests.support.faults.phi_slides import NEW_PHI, SURNAMES, PhiUpload, phi_uploads
from tests.support.faults.scenario import ScenarioResult

pytestmark = [pytest.mark.faults, pytest.mark.quick]

DONE = frozenset({"inferred", "indexed", "qc_failed"})
"""Through inference, or stopped by QC (a failed slide is not routed to the models)."""
LABEL_ONLY = frozenset({"patient_name", "accession", "barcode", "scan_date"})
"""Samples' tokens a byte scan cannot judge: drawn into label pixels, or a date whose
de-identified form (shifted) is compared by the unit tests, not here."""


def _scan(
    local: LocalStack, tenant: str, token: str, slide_ids: list[str], needles: Needles
) -> Findings:
    findings = Findings()
    scan_objects(local.s3_servers(), tenant, needles, findings)
    objects = findings.places
    scan_events(local.ledger(), slide_ids, needles, findings)
    records = findings.places - objects
    scan_rows(local.env["POSTGRES_URL"], slide_ids, needles, findings)
    rows = findings.places - objects - records
    scan_catalog(local.env["CATALOG_API"], token, slide_ids, needles, findings)
    findings.notes.append(
        f"{objects} objects, {records} records, {rows} rows, "
        f"{findings.places - objects - records - rows} catalog answers searched "
        f"({findings.bytes_scanned / 1e6:.1f} MB) for {len(needles.phi)} PHI strings"
    )
    return findings


def _planted(
    local: LocalStack, tenant: str, slides: dict[str, str], uploads: list[PhiUpload]
) -> list[str]:
    """The control: each original in quarantine holds the PHI planted in its file (a scan
    that finds nothing elsewhere means something only if it would find it there)."""
    s3 = local.s3_servers()["minio"]
    by_name = {u.name: u for u in uploads}
    missing: list[str] = []
    for slide_id, name in slides.items():
        response = s3.get_object(QUARANTINE_BUCKET, f"{tenant}/{slide_id}/original")
        try:
            original = response.read()
        finally:
            response.close()
            response.release_conn()
        planted = by_name[name].phi
        lost = set(planted) - Needles.of(planted).found(original)
        missing += [f"control: {phi!r} not in the original of {name}" for phi in sorted(lost)]
    return missing


@pytest.mark.timeout(1500)
def test_no_phi_leaves_quarantine(local_stack: LocalStack, tmp_path: Path) -> None:
    started = time.time()
    result = ScenarioResult(
        scenario="o-deid-completeness",
        title="PHI in places never planted before",
        injected=(
            f"3 slides (painted TIFF, Aperio SVS, zipped DICOM series) with {len(NEW_PHI)} new "
            "PHI strings: level-1 description, level-2 XMP, unknown private tags (ASCII, "
            "UTF-16), file name, upload meta, manifest case id and project, extra SVS "
            "properties, nested DICOM sequences, private blocks, label-only patient name, zip "
            "member names"
        ),
        checked=(
            "every slide reaches QC (and inference unless QC failed it); no PHI string (any "
            "case, UTF-8/UTF-16) in any object outside quarantine, any record, any "
            "catalog/inference/QC/convert row, any catalog answer"
        ),
    )
    tenant = local_stack.create_tenant("phi")
    uploads = phi_uploads(tmp_path / "slides", seed=760)
    slides: dict[str, str] = {}
    try:
        local_stack.route_models(tenant.name)
        for upload in uploads:
            batch = (
                local_stack.create_batch(tenant.token, upload.manifest) if upload.manifest else None
            )
            slide_id, _ = local_stack.upload(
                tenant.token, upload.path, meta=upload.meta or None, batch_id=batch
            )
            slides[slide_id] = upload.name
        for slide_id in slides:
            local_stack.wait_for_qc(tenant.token, slide_id)
            local_stack.wait_in_catalog(tenant.token, slide_id, DONE)
    finally:
        local_stack.unroute()
    result.failures += _planted(local_stack, tenant.name, slides, uploads)
    samples = [v for k, v in TOKENS.items() if k not in LABEL_ONLY]
    phi = [p for u in uploads for p in (*u.phi, *u.beside)] + list(SURNAMES) + samples
    findings = _scan(local_stack, tenant.name, tenant.token, list(slides), Needles.of(phi))
    result.slides = len(slides)
    result.attempts = findings.places * len(set(phi))
    result.leaks = len(findings.hits)
    result.failures += findings.hits
    result.notes += findings.notes
    result.notes.append(", ".join(f"{name} {sid}" for sid, name in slides.items()))
    result.wall_s = round(time.time() - started, 1)
    result.save()
    assert not result.failures, "\n".join(result.failures)
