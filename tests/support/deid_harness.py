"""The deid workflow on in-memory ports (store, publisher) with its real SQLite records, for the
deid unit tests (``harness`` in their conftest)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID, uuid4

from sqlalchemy import Engine, func
from sqlmodel import Session, select

from slidestream_contracts.events import SlideFactsV1, SlideFormat, SlideUploadedV1
from slidestream_deid.adapters.repository import SqlDeidRecords
from slidestream_deid.adapters.slides import WsiSlideTools
from slidestream_deid.adapters.vault_cipher import AesGcmVaultCipher
from slidestream_deid.main import MIGRATIONS_DIR
from slidestream_deid.settings import DeidSettings
from slidestream_deid.workflow import EVENT_ID_NAMESPACE, DeidWorkflow
from slidestream_platform.db import make_engine, upgrade_to_head
from slidestream_platform.decisions import DecisionPublisher
from slidestream_samples import TOKENS
from slidestream_wsi.deid import DeidPolicy, DeidResult, PatchedDeidResult
from slidestream_wsi.source import SlideSource
from tests.support.fakes import FakeVerifier, MemoryStore, RecordingPublisher

TENANT = "acme"
MANIFEST = {
    "filename": f"{TOKENS['filename']}.svs",
    "sha256": "0" * 64,
    "case_id": TOKENS["accession"],
    "specimen_id": TOKENS["specimen"],
    "species": "human",
    "organ": "colon",
    "stain": "H&E",
    "extra": {"patient_id": TOKENS["patient_id"], "barcode": TOKENS["barcode"]},
}


class CountingTools(WsiSlideTools):
    def __init__(self) -> None:
        super().__init__()
        self.deidentify_calls = 0

    def deidentify(self, source: Path, destination: Path, policy: DeidPolicy) -> DeidResult:
        self.deidentify_calls += 1
        return super().deidentify(source, destination, policy)

    def deidentify_as_patches(self, source: SlideSource, policy: DeidPolicy) -> PatchedDeidResult:
        self.deidentify_calls += 1
        return super().deidentify_as_patches(source, policy)


@dataclass
class Harness:
    workflow: DeidWorkflow
    records: SqlDeidRecords
    store: MemoryStore
    publisher: RecordingPublisher
    verifier: FakeVerifier
    tools: CountingTools
    engine: Engine
    settings: DeidSettings

    def upload(
        self,
        slide: Path,
        *,
        manifest: dict[str, object] | None = MANIFEST,
        declared: SlideFactsV1 | None = None,
    ) -> SlideUploadedV1:
        slide_id = uuid4()
        prefix = f"{TENANT}/{slide_id}"
        original = self.store.put_bytes("quarantine", f"{prefix}/original", slide.read_bytes())
        info = {"MetaData": {"filename": f"{TOKENS['filename']}.svs"}}
        self.store.put_bytes("quarantine", f"{prefix}/original.info", json.dumps(info).encode())
        manifest_ref = None
        if manifest is not None:
            body = json.dumps(manifest).encode()
            manifest_ref = self.store.put_bytes("quarantine", f"{prefix}/manifest.json", body)
        return SlideUploadedV1(
            slide_id=slide_id,
            tenant=TENANT,
            original=original.to_event_ref(),
            container_format=SlideFormat.TIFF,
            upload_id="test",
            manifest=manifest_ref.to_event_ref() if manifest_ref else None,
            declared=declared,
        )

    def count(self, table: type[object], slide_id: UUID | None = None) -> int:
        with Session(self.engine) as session:
            query = select(func.count()).select_from(table)
            if slide_id is not None:
                query = query.where(table.slide_id == slide_id)  # type: ignore[attr-defined]
            return int(session.exec(query).one())

    def deidentified_objects(self, slide_id: UUID) -> dict[str, bytes]:
        prefix = f"{TENANT}/{slide_id}/"
        return {
            key: data
            for (bucket, key), data in self.store.objects.items()
            if bucket == "deidentified" and key.startswith(prefix)
        }


@contextmanager
def deid_harness(tmp_path: Path) -> Iterator[Harness]:
    """The workflow on a migrated SQLite database of ``tmp_path``, an in-memory store and a
    recording publisher; the database is closed afterwards."""
    key_file = tmp_path / "key"
    key_file.write_text("k" * 64)
    vault_key_file = tmp_path / "vault-key"
    vault_key_file.write_text("v" * 64)
    settings = DeidSettings(
        pseudonym_key_file=key_file,
        vault_key_file=vault_key_file,
        database_url=f"sqlite:///{tmp_path / 'deid.db'}",
        data_dir=tmp_path,
        quarantine_retention_s=3600,
        work_dir=tmp_path,
    )
    engine = make_engine(settings.database, "deid")
    upgrade_to_head(engine, "deid", MIGRATIONS_DIR)
    store, publisher, tools = MemoryStore(), RecordingPublisher(), CountingTools()
    verifier = FakeVerifier()
    records = SqlDeidRecords(engine, AesGcmVaultCipher(settings.vault_keys()))
    workflow = DeidWorkflow(
        settings=settings,
        store=store,
        records=records,
        slides=tools,
        decisions=DecisionPublisher(publisher, verifier, EVENT_ID_NAMESPACE),
        key=settings.pseudonym_key(),
    )
    yield Harness(workflow, records, store, publisher, verifier, tools, engine, settings)
    engine.dispose()
