"""Stand-ins for the inference service's models API tests: a Triton that serves what the bucket
holds (one, or several replicas of it), a slide catalogue in memory, model cards and uploads."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from uuid import UUID

from sqlalchemy import Engine

from slidestream_contracts.model_card import ModelCardV1
from slidestream_inference.adapters.model_bucket import ModelBucket
from slidestream_inference.adapters.routes import Route
from slidestream_inference.adapters.slide_catalogue import QcSlide
from slidestream_inference.adapters.triton_replicas import Replica
from slidestream_inference.adapters.triton_repository import (
    CanaryOutcome,
    TritonRefusedError,
    TritonUnavailableError,
    VersionState,
    VersionStatistics,
)
from slidestream_inference.models_admin import ModelsAdmin
from slidestream_modelrepo import pack_upload
from slidestream_platform.db import DatabaseSettings, make_engine, upgrade_to_head

MIGRATIONS_DIR = (
    Path(__file__).parents[2] / "services/inference/src/slidestream_inference/migrations"
)
SERVICE = "inference"
TRITON_ENDPOINT = "127.0.0.1:18001"
"""The one Triton of the models API's tests (the local stack's gRPC address)."""


def migrated_engine(data_dir: Path) -> Engine:
    """The service's SQLite database with every migration applied."""
    engine = make_engine(DatabaseSettings(data_dir=data_dir), SERVICE)
    upgrade_to_head(engine, SERVICE, MIGRATIONS_DIR)
    return engine


def model_card(name: str = "tissue", version: str = "1", **changes: object) -> ModelCardV1:
    """A tissue classifier (4 classes) with an embedding output."""
    card = {
        "name": name,
        "version": version,
        "intended_stain": "H&E",
        "input": {"name": "INPUT", "tile_size_px": 64, "mpp_um": 2.0},
        "outputs": [
            {
                "name": "PROBS",
                "kind": "class_probabilities",
                "width": 4,
                "labels": ["tumour", "stroma", "fat", "background"],
            },
            {"name": "EMBED", "kind": "embedding", "width": 16, "dtype": "FP16"},
        ],
        "max_batch_size": 16,
        "preferred_batch_sizes": [4, 8],
        **changes,
    }
    return ModelCardV1.model_validate(card)


def torchscript_bytes() -> bytes:
    """Bytes shaped like ``torch.jit.save``'s file (a zip archive); nothing runs them here."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("model/data.pkl", b"not a real module")
    return buffer.getvalue()


async def push_torchscript(admin: ModelsAdmin, card: ModelCardV1) -> None:
    """Push ``card``'s model as a TorchScript file through the models API's use case."""
    archive = pack_upload(card, {"model.pt": torchscript_bytes()})
    await admin.push(card.name, card.version, card.model_dump_json().encode(), archive)


@dataclass
class FakeTriton:
    """Loads what the bucket holds, each version with a card becoming ``READY``; its canary
    answers each output with the card's declared shape unless ``lies`` says otherwise."""

    bucket: ModelBucket
    down: bool = False
    refuse_load: set[str] = field(default_factory=set)
    not_ready: dict[tuple[str, str], str] = field(default_factory=dict)
    """Versions that fail to load, with Triton's reason."""
    lies: dict[str, tuple[int, ...]] = field(default_factory=dict)
    """Output name → the shape the canary answers instead of the card's."""
    loaded: dict[str, dict[str, VersionState]] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    canaries: list[tuple[str, str, Mapping[str, tuple[int, ...]]]] = field(default_factory=list)

    def _answer(self, call: str, name: str) -> None:
        self.calls.append((call, name))
        if self.down:
            raise TritonUnavailableError("Triton at fake: connection refused")

    async def states(self, name: str) -> list[VersionState]:
        self._answer("states", name)
        return list(self.loaded.get(name, {}).values())

    async def load(self, name: str) -> None:
        self._answer("load", name)
        if name in self.refuse_load:
            raise TritonRefusedError(f"failed to load '{name}'")
        self.loaded[name] = {
            version: VersionState(
                version,
                "UNAVAILABLE" if (name, version) in self.not_ready else "READY",
                self.not_ready.get((name, version), ""),
            )
            for version in self.bucket.versions(name)
        }

    async def unload(self, name: str) -> None:
        self._answer("unload", name)
        self.loaded[name] = {
            version: VersionState(version, "UNAVAILABLE", "unloaded")
            for version in self.loaded.get(name, {})
        }

    async def device(self, name: str) -> str:
        self._answer("device", name)
        return "cpu"

    async def statistics(self, name: str) -> list[VersionStatistics]:
        self._answer("statistics", name)
        return [
            VersionStatistics(version, 12, 3, 0.5, 7.25)
            for version, state in self.loaded.get(name, {}).items()
            if state.state == "READY"
        ]

    async def canary(
        self,
        name: str,
        version: str,
        inputs: Mapping[str, tuple[int, ...]],
        outputs: Sequence[str],
    ) -> CanaryOutcome:
        self._answer("canary", name)
        self.canaries.append((name, version, dict(inputs)))
        card = self.bucket.versions(name)[version]
        shapes: dict[str, tuple[int, ...]] = {}
        dtypes: dict[str, str] = {}
        for output in card.outputs:
            if output.name in outputs:
                shapes[output.name] = self.lies.get(output.name, (1, output.width))
                dtypes[output.name] = output.dtype
        return CanaryOutcome(seconds=0.01, shapes=shapes, dtypes=dtypes)


@dataclass
class FakeTritonReplicas:
    """Several Triton replicas by endpoint, each a :class:`FakeTriton` over the same bucket, as
    a headless Service lists them; ``unresolvable``: its name has no address (no ready pod)."""

    tritons: dict[str, FakeTriton]
    unresolvable: bool = False

    @classmethod
    def over(cls, bucket: ModelBucket, count: int) -> FakeTritonReplicas:
        return cls({f"10.0.0.{i + 1}:8001": FakeTriton(bucket) for i in range(count)})

    async def replicas(self) -> list[Replica]:
        if self.unresolvable:
            raise TritonUnavailableError("no Triton replica: triton-replicas does not resolve")
        return [Replica(endpoint, triton) for endpoint, triton in self.tritons.items()]


@dataclass
class FakeSlideCatalogue:
    """Slides QC judged: (slide id, tenant, project, stain, verdict, judged at)."""

    slides: list[tuple[UUID, str, str | None, str | None, str, datetime]] = field(
        default_factory=list
    )

    def qc_slides(
        self,
        route: Route,
        *,
        since: datetime | None = None,
        slide_ids: Sequence[UUID] | None = None,
    ) -> list[QcSlide]:
        return [
            QcSlide(slide_id, tenant)
            for slide_id, tenant, project, stain, verdict, judged_at in self.slides
            if tenant == route.tenant
            and route.project in (None, project)
            and route.stain in (None, stain)
            and verdict in route.min_qc.verdicts()
            and (since is None or judged_at >= since)
            and (slide_ids is None or slide_id in slide_ids)
        ]
