"""What similarity search reads from the search tables: a slide's model runs (embedding
references, version), its converted pyramid, the live generation. Rows of the caller's tenant
only; every query names the tenant."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

from sqlalchemy import Engine
from sqlmodel import col, select

from slidestream_catalog.adapters.search_tables import (
    SearchGenerationRow,
    SearchModelRunRow,
    SearchSlideRow,
)
from slidestream_catalog.domain.similarity import Level
from slidestream_contracts.events import ObjectRef
from slidestream_platform.db import session_scope


@dataclass(frozen=True, slots=True)
class ModelRun:
    slide_id: UUID
    model: str
    model_version: str
    embeddings: ObjectRef | None
    slide_embedding: ObjectRef | None


@dataclass(frozen=True, slots=True)
class SlideImages:
    levels: tuple[Level, ...]
    dicom: tuple[ObjectRef, ...]
    """``level-<i>.dcm`` of each converted level (the crops' source)."""
    tiff: ObjectRef | None


class SimilarSource(Protocol):
    async def live_generation(self) -> int: ...

    async def runs_of(self, generation: int, tenant: str, slide_id: UUID) -> list[ModelRun]:
        """The slide's latest run of each model (empty: unknown slide or no run yet)."""

    async def runs(
        self, generation: int, tenant: str, slide_ids: Sequence[UUID], model: str
    ) -> dict[UUID, ModelRun]: ...

    async def versions(self, generation: int, tenant: str, model: str) -> list[str]:
        """The versions of ``model`` that the tenant's slides were run with."""

    async def images(self, generation: int, tenant: str, slide_id: UUID) -> SlideImages | None: ...


class SqlSimilarSource:
    """:class:`SimilarSource` on the search tables (PostgreSQL or SQLite)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def live_generation(self) -> int:
        return await asyncio.to_thread(self._live_generation)

    async def runs_of(self, generation: int, tenant: str, slide_id: UUID) -> list[ModelRun]:
        return await asyncio.to_thread(self._runs, generation, tenant, [slide_id], None)

    async def runs(
        self, generation: int, tenant: str, slide_ids: Sequence[UUID], model: str
    ) -> dict[UUID, ModelRun]:
        found = await asyncio.to_thread(self._runs, generation, tenant, slide_ids, model)
        return {run.slide_id: run for run in found}

    async def versions(self, generation: int, tenant: str, model: str) -> list[str]:
        return await asyncio.to_thread(self._versions, generation, tenant, model)

    async def images(self, generation: int, tenant: str, slide_id: UUID) -> SlideImages | None:
        return await asyncio.to_thread(self._images, generation, tenant, slide_id)

    def _live_generation(self) -> int:
        with session_scope(self._engine) as session:
            row = session.get(SearchGenerationRow, 1)
            return row.live if row is not None else 1

    def _runs(
        self, generation: int, tenant: str, slide_ids: Sequence[UUID], model: str | None
    ) -> list[ModelRun]:
        query = select(SearchModelRunRow).where(
            SearchModelRunRow.generation == generation,
            SearchModelRunRow.tenant == tenant,
            col(SearchModelRunRow.slide_id).in_(list(slide_ids)),
        )
        if model is not None:
            query = query.where(SearchModelRunRow.model == model)
        with session_scope(self._engine) as session:
            return [_run(row) for row in session.exec(query)]

    def _versions(self, generation: int, tenant: str, model: str) -> list[str]:
        query = (
            select(SearchModelRunRow.model_version)
            .where(
                SearchModelRunRow.generation == generation,
                SearchModelRunRow.tenant == tenant,
                SearchModelRunRow.model == model,
            )
            .distinct()
        )
        with session_scope(self._engine) as session:
            return sorted(session.exec(query), key=_version_order)

    def _images(self, generation: int, tenant: str, slide_id: UUID) -> SlideImages | None:
        with session_scope(self._engine) as session:
            row = session.get(SearchSlideRow, (generation, slide_id))
            if row is None or row.tenant != tenant:
                return None
            return slide_images(row.levels_json, row.images_json)


def slide_images(levels_json: str, images_json: str) -> SlideImages:
    levels = tuple(
        Level(int(lv["index"]), int(lv["width_px"]), int(lv["height_px"]))
        for lv in json.loads(levels_json)
    )
    images = json.loads(images_json)
    dicom = tuple(ObjectRef.model_validate(ref) for ref in images.get("dicom", []))
    tiff = images.get("tiff")
    return SlideImages(levels, dicom, ObjectRef.model_validate(tiff) if tiff else None)


def _run(row: SearchModelRunRow) -> ModelRun:
    return ModelRun(
        slide_id=row.slide_id,
        model=row.model,
        model_version=row.model_version,
        embeddings=_ref(row.embeddings_json),
        slide_embedding=_ref(row.slide_embedding_json),
    )


def _ref(document: str | None) -> ObjectRef | None:
    return ObjectRef.model_validate_json(document) if document else None


def _version_order(version: str) -> tuple[int, str]:
    # Versions are decimal strings (Triton's); compare as numbers, oldest first.
    return (int(version), version) if version.isdigit() else (-1, version)
