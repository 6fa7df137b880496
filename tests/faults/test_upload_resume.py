"""Scenario (l): a partner's upload killed mid-transfer and run again; then tusd killed
mid-transfer and started again.

The partner CLI (``slidestream upload --json``) sends one large slide (4096x3072 px, about
3.6 MB) through tusd's proxy slowed by a bandwidth toxic, so that the transfer takes about half
a minute, and is SIGKILLed once tusd has received half of it (as the upload service reports
from tusd's progress hooks); its connection is cut at the same moment, as when the partner's
machine or network dies — a killed process's kernel would otherwise still deliver what the CLI
had written into the socket, and loopback buffers hold this whole file. Run again with the
same state directory — what the CLI tells a partner to do — and no toxic, it must resume the
same upload from the server's offset: send only the rest of the file, and end with one slide
whose stored original hashes like the file, which reaches QC.

Then tusd itself: a second slide's transfer, tusd SIGKILLed once half of it arrived and
started again after a few seconds; the CLI, still running, must carry the same upload through
(from whatever offset the restarted tusd reports) to the same ending. tusd's S3 store keeps an
interrupted request's bytes only when the request ends (it writes them to S3 then); a SIGKILLed
tusd never ends it, so the restarted one reports the offset of the parts already stored — 0
for a file under its part size — and the CLI sends the file again.
"""

from __future__ import annotations

import time

import pytest

from slidestream_client.state import UploadRecord
from slidestream_contracts.topics import Topic
from tests.support.faults.batch import make_slides
from tests.support.faults.cli_upload import CliUpload, file_sha256
from tests.support.faults.ledger import Ledger
from tests.support.faults.objects import object_sha256
from tests.support.faults.scenario import QC_REACHED, Run, ScenarioResult
from tests.support.faults.stack import FaultStack

pytestmark = pytest.mark.faults

SLIDE_PX = (4096, 3072)
RATE_KBPS = 96
"""The bandwidth toxic's rate (Toxiproxy's KB/s) on the way from the CLI to tusd."""
TOXIC = "slow-partner"
KILL_AT = 0.5
"""Share of the file tusd has received when the kill comes."""
RESENT_MAX_SHARE = 0.6
TUSD_DOWN_S = 5.0
TRANSFER_TIMEOUT_S = 300.0
END_TIMEOUT_S = 420.0


def _slow_partner(stack: FaultStack, on: bool) -> None:
    if on:
        stack.servers.proxies.add_toxic(
            "tusd", TOXIC, "bandwidth", {"rate": RATE_KBPS}, stream="upstream"
        )
    else:
        stack.servers.proxies.remove_toxic("tusd", TOXIC)


def _cli(stack: FaultStack, run: Run, seed: int) -> CliUpload:
    folder = stack.run_dir / "slides" / run.name
    path = make_slides(folder, 1, first_seed=seed, size_px=SLIDE_PX)[0]
    return CliUpload(
        stack.pipeline.upload_api,
        run.token,
        path,
        stack.run_dir / "client-state" / f"{run.name}-{seed}",
        stack.run_dir / "logs",
    )


def _left_behind(cli: CliUpload, run: Run) -> UploadRecord:
    """The upload the state directory remembers after a kill; its slide is expected at QC."""
    record = cli.record()
    assert record is not None and record.url and record.slide_id, "the state dir has no upload"
    assert not record.completed, "the upload was complete before the kill"
    run.expected[record.slide_id] = QC_REACHED
    run.in_flight_max = max(run.in_flight_max, run.in_flight())
    return record


def _client_killed_then_rerun(
    stack: FaultStack, run: Run, result: ScenarioResult
) -> tuple[str, str]:
    """The CLI SIGKILLed mid-transfer, run again; the slide id and the file's sha256."""
    cli = _cli(stack, run, 1200)
    size = cli.path.stat().st_size
    _slow_partner(stack, True)
    received = cli.start().wait_received(KILL_AT, TRANSFER_TIMEOUT_S)
    cli.kill()
    stack.servers.proxies.set_enabled("tusd", False)  # its connection closed, its bytes lost
    stack.servers.proxies.set_enabled("tusd", True)
    before = _left_behind(cli, run)
    _slow_partner(stack, False)
    rerun = cli.start().finish()
    after = cli.record()
    assert rerun["status"] == "uploaded", f"the rerun failed: {rerun}"
    assert rerun["slide_id"] == before.slide_id, "the rerun made another slide"
    assert after is not None and after.url == before.url, "the rerun made another upload"
    resumed, sent = int(rerun["resumed_from_bytes"]), int(rerun["bytes_sent"])
    assert resumed < size, "the kill came after the whole file had been received"
    assert resumed >= received, f"resumed from {resumed}, below the {received} received"
    assert sent <= RESENT_MAX_SHARE * size, f"the rerun sent {sent} of {size} bytes"
    result.notes.append(
        f"client: SIGKILLed with {received} of {size} bytes received; the rerun resumed at "
        f"{resumed} and sent {sent} bytes ({sent / size:.0%} of the file)"
    )
    return str(before.slide_id), file_sha256(cli.path)


def _tusd_killed_mid_transfer(
    stack: FaultStack, run: Run, result: ScenarioResult
) -> tuple[str, str, float]:
    """tusd SIGKILLed mid-transfer and restarted under a running CLI; the slide id, the file's
    sha256 and the epoch second tusd answered again."""
    assert stack.pipeline.tusd is not None
    cli = _cli(stack, run, 1201)
    size = cli.path.stat().st_size
    _slow_partner(stack, True)
    received = cli.start().wait_received(KILL_AT, TRANSFER_TIMEOUT_S)
    stack.pipeline.tusd.kill()
    before = _left_behind(cli, run)
    time.sleep(TUSD_DOWN_S)
    ready_s = stack.pipeline.restart_tusd()
    back_at = time.time()
    _slow_partner(stack, False)
    done = cli.finish()
    after = cli.record()
    assert done["status"] == "uploaded", f"the upload failed after tusd's restart: {done}"
    assert done["slide_id"] == before.slide_id, "tusd's restart made another slide"
    assert after is not None and after.url == before.url, "tusd's restart made another upload"
    sent = int(done["bytes_sent"])
    result.notes.append(
        f"tusd: SIGKILLed with {received} of {size} bytes received, started again after "
        f"{TUSD_DOWN_S:.0f} s (ready in {ready_s:.1f} s); the CLI carried the same upload on "
        f"and sent {sent} bytes in all ({sent / size:.1f}x the file)"
    )
    return str(before.slide_id), file_sha256(cli.path), back_at


def _stored_whole(stack: FaultStack, run: Run, ledger: Ledger, files: dict[str, str]) -> list[str]:
    """Failures unless exactly the expected slides entered the pipeline for the tenant, each
    original stored as its file (``files``: slide id → the file's sha256)."""
    entered = {
        str(r.key)
        for r in ledger.records
        if r.topic in (Topic.SLIDES_UPLOADED.value, Topic.SLIDES_REJECTED.value)
        and r.json().get("tenant") == run.tenant
    }
    failures = []
    if entered != set(files):
        failures.append(f"slides of the tenant: {sorted(entered)}, expected {sorted(files)}")
    for slide_id, sha256 in files.items():
        for uploaded in ledger.of(slide_id, [Topic.SLIDES_UPLOADED.value]):
            original = uploaded.json()["original"]
            stored, _ = object_sha256(stack.s3(), original["bucket"], original["key"])
            if stored != sha256:
                failures.append(f"{slide_id}: the stored original's sha256 is not the file's")
    return failures


@pytest.mark.timeout(900)
def test_a_killed_upload_resumes_from_the_servers_offset(stack: FaultStack) -> None:
    run = Run(stack, "upload-resume")
    result = ScenarioResult(
        scenario="l-upload-resume",
        title="Upload killed and resumed",
        injected=f"the partner CLI SIGKILLed with {KILL_AT:.0%} of a "
        f"{SLIDE_PX[0]}x{SLIDE_PX[1]} px slide received (transfer slowed to {RATE_KBPS} KB/s), "
        f"then run again; then tusd SIGKILLed at {KILL_AT:.0%} of another and restarted after "
        f"{TUSD_DOWN_S:.0f} s",
        checked="the rerun resumes the same upload at the server's offset and sends only the "
        "rest; one slide per file, its stored original hashes like the file; both reach QC; "
        "invariants 1-4; recovery: tusd's restart to the cut upload's decision",
    )
    first, first_sha256 = _client_killed_then_rerun(stack, run, result)
    second, second_sha256, tusd_back = _tusd_killed_mid_transfer(stack, run, result)
    result.in_flight = run.in_flight_max

    ledger = run.wait_until_ended(END_TIMEOUT_S)
    run.judge(result, ledger, fault_ended=None)
    result.failures += _stored_whole(
        stack, run, ledger, {first: first_sha256, second: second_sha256}
    )
    # Recovery: from tusd answering again to the decision on the upload it had cut.
    accepted = ledger.first_decision_after([second], tusd_back)
    result.recovery_s = None if accepted is None else round(accepted - tusd_back, 1)
    last = ledger.last_terminal_time(list(run.expected))
    result.drain_s = None if last is None else round(max(0.0, last - tusd_back), 1)
    result.save()

    assert result.in_flight > 0, "the kills came after the slides had ended"
    assert not result.failures, "\n".join(result.failures)
