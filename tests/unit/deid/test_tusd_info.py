"""Once deid has decided an upload, tusd can no longer answer for it (its ``.info`` goes)."""

from __future__ import annotations

from pathlib import Path

from tests.support.deid_harness import Harness


async def test_once_decided_tusd_can_no_longer_answer_for_the_upload(
    harness: Harness, planted_svs: Path
) -> None:
    """Fault suite scenarios p and q: tusd answers HEAD (with the client's file name), GET and
    PATCH on an upload URL without asking any hook, and finds the upload by its object key,
    which names tenant and slide. Once deid has decided (and read the file name), tusd's
    ``.info`` goes: tusd then answers 404 for the upload. The original stays for retention."""
    event = harness.upload(planted_svs)
    info = ("quarantine", f"{event.original.key}.info")
    assert info in harness.store.objects

    await harness.workflow.on_uploaded(event)
    await harness.workflow.on_uploaded(event)  # a redelivery needs no .info: it is decided

    assert info not in harness.store.objects
    assert ("quarantine", event.original.key) in harness.store.objects
    assert harness.tools.deidentify_calls == 1
