"""The models API's use cases: push, list and inspect, load with a canary, unload, route, backfill.

Each returns the view the API answers with, or raises an :class:`AdminError` whose kind the API
turns into a status code. Storage and Triton calls are the adapters'; the object store and the
database are synchronous, so they run on worker threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from uuid import UUID, uuid4, uuid5

from slidestream_contracts.events import InferenceRequestedV1
from slidestream_contracts.model_card import ModelCardV1, ModelOutputV1, OutputKind
from slidestream_inference.adapters.model_bucket import ModelBucket, Versions
from slidestream_inference.adapters.routes import (
    BackfillStore,
    LoadStore,
    Route,
    RouteStore,
)
from slidestream_inference.adapters.slide_catalogue import QcSlide, SlideCatalogue
from slidestream_inference.adapters.triton import ModelNotReadyError, TritonUnavailableError
from slidestream_inference.adapters.triton_repository import (
    TritonRefusedError,
    TritonRepository,
    VersionState,
)
from slidestream_inference.models_views import (
    READY,
    UNLOADED,
    BackfillProgressView,
    BackfillStartedView,
    CanaryView,
    LoadedView,
    ModelStatusView,
    ModelsView,
    ModelView,
    PushedView,
    RouteDeletedView,
    RoutesView,
    RouteView,
    StatisticsView,
    UnloadedView,
    route_view,
    version_view,
)
from slidestream_modelrepo import (
    FieldProblem,
    ModelPackage,
    ModelPackageError,
    package_directory,
    package_torchscript,
    read_card,
    signature_problems,
    unpack_upload,
)
from slidestream_platform.decisions import Publisher

TORCHSCRIPT_FILE = "model.pt"
"""An upload holding only this file is a TorchScript push (``pack_upload``'s wire format)."""


logger = logging.getLogger(__name__)


class AdminError(Exception):
    code = "error"

    def __init__(self, message: str, problems: Sequence[FieldProblem] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.problems = tuple(problems)


class NotFoundError(AdminError):
    code = "not-found"


class VersionExistsError(AdminError):
    code = "version-exists"


class InvalidRequestError(AdminError):
    code = "invalid"


class CanaryFailedError(AdminError):
    code = "canary-failed"


class UnavailableError(AdminError):
    code = "unavailable"


def expected_shape(output: ModelOutputV1, batch: int) -> tuple[int, ...]:
    """The shape the card declares for ``output`` on a batch of ``batch`` tiles."""
    if output.kind is OutputKind.SEGMENTATION and output.size_px is not None:
        return (batch, output.width, output.size_px, output.size_px)
    return (batch, output.width)


def package_upload(card: ModelCardV1, archive: bytes, *, max_bytes: int, gpus: int) -> ModelPackage:
    """The bucket files of a push: generated for a lone TorchScript file, else the pushed
    Triton model directory checked against the card."""
    files = unpack_upload(archive, max_bytes=max_bytes)
    if set(files) == {TORCHSCRIPT_FILE}:
        return package_torchscript(files[TORCHSCRIPT_FILE], card, gpus=gpus)
    return package_directory(files, card)


@dataclass(frozen=True, slots=True)
class ModelsAdmin:
    bucket: ModelBucket
    triton: TritonRepository
    routes: RouteStore
    backfills: BackfillStore
    loads: LoadStore
    catalogue: SlideCatalogue
    publisher: Publisher
    gpus: int
    """GPUs per Triton replica: generated configs run on ``KIND_GPU`` when positive."""
    max_upload_bytes: int

    async def _versions(self, name: str) -> Versions:
        versions = await asyncio.to_thread(self.bucket.versions, name)
        if not versions:
            raise NotFoundError(f"no model {name!r}: push a version first")
        return versions

    async def push(self, name: str, version: str, card_data: bytes, archive: bytes) -> PushedView:
        """Store a new, immutable version of a model.

        1. read and validate the card; its name and version must be the path's;
        2. refuse a version that exists (its ``card.json`` is there);
        3. unpack the upload and build the bucket files: generated wrapper and config for a
           TorchScript file, the pushed directory checked against the card otherwise;
        4. the card must keep the input and outputs of the model's newest version (all of a
           model's versions share one ``config.pbtxt``);
        5. write the files, ``card.json`` last (the version exists from then on).

        Two pushes of one version at the same moment both pass step 2 and the later card wins;
        the object store offers no create-if-absent to rule that out.
        """
        try:
            card = read_card(card_data)
        except ModelPackageError as error:
            raise InvalidRequestError("the model card is invalid", error.problems) from error
        mismatch = [
            FieldProblem(field, f"{got!r} differs from {want!r} in the request path")
            for field, got, want in (("name", card.name, name), ("version", card.version, version))
            if got != want
        ]
        if mismatch:
            raise InvalidRequestError("the card names another model or version", mismatch)
        if await asyncio.to_thread(self.bucket.has_version, name, version):
            raise VersionExistsError(f"{name} version {version} exists; versions are immutable")
        try:
            package = await asyncio.to_thread(
                package_upload,
                card,
                archive,
                max_bytes=self.max_upload_bytes,
                gpus=self.gpus,
            )
        except ModelPackageError as error:
            message = "the model does not match its card"
            raise InvalidRequestError(message, error.problems) from error
        existing = await asyncio.to_thread(self.bucket.versions, name)
        if existing:
            newest = list(existing.values())[-1]
            problems = signature_problems(card, newest)
            if problems:
                message = f"version {version} changes the signature of {name}"
                raise InvalidRequestError(message, problems)
        keys = await asyncio.to_thread(self.bucket.write, package.files, package.card_key())
        return PushedView(name=name, version=version, files=keys)

    async def _states(self, name: str) -> tuple[dict[str, VersionState], str]:
        """Triton's state of each version of ``name``, and why none is known when Triton is
        down (empty otherwise)."""
        try:
            return {s.version: s for s in await self.triton.states(name)}, ""
        except TritonUnavailableError as error:
            return {}, str(error)

    async def list_models(self) -> ModelsView:
        """Every model in the bucket with its versions' cards and Triton states."""
        models = await asyncio.to_thread(self.bucket.models)
        views = []
        for name, versions in models.items():
            states, down = await self._states(name)
            views.append(
                ModelView(
                    name=name,
                    versions=[
                        version_view(version, card, states.get(version), down)
                        for version, card in versions.items()
                    ],
                )
            )
        return ModelsView(models=views)

    async def status(self, name: str) -> ModelStatusView:
        """One model: versions with state, reason and device; Triton's statistics per version
        (count, mean queue and compute time); when the models API last loaded it."""
        versions = await self._versions(name)
        states, down = await self._states(name)
        device: str | None = None
        statistics: list[StatisticsView] = []
        if any(state.state == READY for state in states.values()):
            try:
                device = await self.triton.device(name)
                statistics = [
                    StatisticsView(**asdict(entry)) for entry in await self.triton.statistics(name)
                ]
            except (TritonRefusedError, TritonUnavailableError):
                pass  # unloaded between the calls: the states already say so
        views = [
            version_view(v, card, states.get(v), down, device=device)
            for v, card in versions.items()
        ]
        loaded_at = await asyncio.to_thread(self.loads.loaded_at, name)
        return ModelStatusView(
            name=name, versions=views, statistics=statistics, loaded_at=loaded_at
        )

    async def load(self, name: str) -> LoadedView:
        """Load a model and prove it answers as its cards declare.

        1. the model must have a version in the bucket;
        2. Triton loads it from the repository (every version: ``version_policy: all``);
        3. each version with a card must be ``READY``;
        4. canary: a batch of one all-zero tile of the card's input shape per version; every
           declared output must come back with the declared shape and data type;
        5. a failing step 3 or 4 unloads the model and reports why; success records the load
           time and answers with the newest version's canary.
        """
        versions = await self._versions(name)
        try:
            await self.triton.load(name)
        except TritonUnavailableError as error:
            raise UnavailableError(str(error)) from error
        except TritonRefusedError as error:
            raise CanaryFailedError(f"Triton could not load {name}: {error}") from error
        try:
            canary = await self._canaries(name, versions)
        except CanaryFailedError:
            await self._unload_quietly(name)
            raise
        await asyncio.to_thread(self.loads.record, name, canary.seconds)
        return LoadedView(name=name, state=READY, canary=canary)

    async def restore(self, name: str) -> bool:
        """Load ``name`` again (with its canary) if the models API loaded it and nobody unloaded
        it since: Triton in explicit model-control mode forgets every model when it restarts.
        Whether a load was attempted; Triton not answering is :class:`TritonUnavailableError`
        (the slide waits), a failed canary :class:`ModelNotReadyError` (retried, then a dead
        letter): the consume path calls this."""
        if await asyncio.to_thread(self.loads.loaded_at, name) is None:
            return False
        logger.info("reloading a model Triton no longer serves", extra={"model": name})
        try:
            await self.load(name)
        except UnavailableError as error:  # Triton still starting: the slide waits for it
            raise TritonUnavailableError(f"{name} could not be loaded again: {error}") from error
        except CanaryFailedError as error:
            raise ModelNotReadyError(f"{name} could not be loaded again: {error}") from error
        return True

    async def _canaries(self, name: str, versions: Versions) -> CanaryView:
        try:
            states = {s.version: s for s in await self.triton.states(name)}
            view: CanaryView | None = None
            for version, card in versions.items():
                state = states.get(version)
                if state is None or state.state != READY:
                    reason = state.reason if state is not None and state.reason else "not loaded"
                    raise CanaryFailedError(f"{name} version {version} is not ready: {reason}")
                view = await self._canary(name, version, card)
        except (TritonRefusedError, TritonUnavailableError) as error:
            raise CanaryFailedError(f"canary request to {name} failed: {error}") from error
        assert view is not None  # _versions returned at least one version
        return view

    async def _canary(self, name: str, version: str, card: ModelCardV1) -> CanaryView:
        side = card.input.tile_size_px
        outcome = await self.triton.canary(
            name,
            version,
            {card.input.name: (1, 3, side, side)},
            [output.name for output in card.outputs],
        )
        for output in card.outputs:
            want = expected_shape(output, batch=1)
            got = outcome.shapes.get(output.name)
            if got != want:
                raise CanaryFailedError(
                    f"{name} version {version}: output {output.name} has shape {got} where the "
                    f"card declares {want}"
                )
            if outcome.dtypes.get(output.name) != output.dtype:
                raise CanaryFailedError(
                    f"{name} version {version}: output {output.name} is "
                    f"{outcome.dtypes.get(output.name)} where the card declares {output.dtype}"
                )
        shapes = {key: list(shape) for key, shape in outcome.shapes.items()}
        return CanaryView(seconds=outcome.seconds, outputs=shapes)

    async def _unload_quietly(self, name: str) -> None:
        # The canary's reason is the answer; Triton's state shows whatever the unload left.
        with contextlib.suppress(TritonRefusedError, TritonUnavailableError):
            await self.triton.unload(name)

    async def unload(self, name: str) -> UnloadedView:
        """Unload every version of a model from Triton and forget its load time."""
        await self._versions(name)
        try:
            await self.triton.unload(name)
        except TritonUnavailableError as error:
            raise UnavailableError(str(error)) from error
        except TritonRefusedError as error:
            raise InvalidRequestError(f"Triton refused to unload {name}: {error}") from error
        await asyncio.to_thread(self.loads.forget, name)
        return UnloadedView(name=name, state=UNLOADED)

    async def put_route(self, route: Route) -> RouteView:
        """Create or replace a route; the model must exist, a pinned version too."""
        versions = await self._versions(route.model_name)
        if route.version is not None and route.version not in versions:
            raise InvalidRequestError(
                f"{route.model_name} has no version {route.version}",
                [FieldProblem("version", f"one of {', '.join(versions)}, or null for the newest")],
            )
        return route_view(await asyncio.to_thread(self.routes.put, route))

    async def delete_routes(self, name: str, tenant: str) -> RouteDeletedView:
        deleted = await asyncio.to_thread(self.routes.delete, name, tenant)
        return RouteDeletedView(name=name, tenant=tenant, deleted=deleted)

    async def list_routes(self) -> RoutesView:
        routes = await asyncio.to_thread(self.routes.list_routes)
        return RoutesView(routes=[route_view(route) for route in routes])

    async def backfill(
        self,
        name: str,
        *,
        since: datetime | None,
        slide_ids: Sequence[UUID] | None,
        version: str | None,
        requested_by: str,
    ) -> BackfillStartedView:
        """Run a model on slides QC already judged.

        1. the model must exist; the version is the one asked for, else the newest;
        2. the slides are those the model's routes select (tenant, project, stain, ``min_qc``),
           judged since ``since`` and among ``slide_ids`` when given; no route, no backfill;
        3. the backfill is recorded with the number of slides before anything is published, so
           the consume path can count outcomes against it from the first one;
        4. one ``InferenceRequestedV1`` per slide, with an id derived from the backfill and the
           slide; if publishing stops part-way, only the published requests stay counted.
        """
        versions = await self._versions(name)
        chosen = version or list(versions)[-1]
        if chosen not in versions:
            raise InvalidRequestError(
                f"{name} has no version {chosen}",
                [FieldProblem("version", f"one of {', '.join(versions)}, or null for the newest")],
            )
        slides = await asyncio.to_thread(self._backfill_slides, name, since, slide_ids)
        backfill_id = uuid4()
        await asyncio.to_thread(self.backfills.create, backfill_id, name, chosen, len(slides))
        published = 0
        try:
            for slide in slides:
                request = InferenceRequestedV1(
                    slide_id=slide.slide_id,
                    tenant=slide.tenant,
                    model_name=name,
                    model_version=chosen,
                    requested_by=requested_by,
                    backfill_id=backfill_id,
                )
                event_id = uuid5(backfill_id, str(slide.slide_id))
                await self.publisher.publish(request, event_id=event_id)
                published += 1
        except Exception as error:  # Kafka's errors vary by client; the count must be right
            await asyncio.to_thread(self.backfills.set_requested, backfill_id, published)
            raise UnavailableError(
                f"backfill {backfill_id} stopped after {published} of {len(slides)} requests: "
                f"{error}"
            ) from error
        return BackfillStartedView(backfill_id=backfill_id, requested=published)

    def _backfill_slides(
        self, name: str, since: datetime | None, slide_ids: Sequence[UUID] | None
    ) -> list[QcSlide]:
        routes = self.routes.list_routes(name)
        if not routes:
            raise InvalidRequestError(
                f"{name} has no routes: a backfill runs on the slides its routes select",
                [FieldProblem("routes", "add a route (PUT /v1/routes/{name}) first")],
            )
        chosen: dict[UUID, QcSlide] = {}
        for route in routes:
            for slide in self.catalogue.qc_slides(route, since=since, slide_ids=slide_ids):
                chosen.setdefault(slide.slide_id, slide)
        return list(chosen.values())

    async def backfill_progress(self, name: str, backfill_id: UUID) -> BackfillProgressView:
        found = await asyncio.to_thread(self.backfills.get, backfill_id)
        if found is None or found.model_name != name:
            raise NotFoundError(f"no backfill {backfill_id} of {name}")
        return BackfillProgressView(requested=found.requested, done=found.done, failed=found.failed)
