"""The models API's use cases: push, list and inspect, load with a canary, unload, route, backfill.

Each returns the view the API answers with, or raises an :class:`AdminError` whose kind the API
turns into a status code. Storage and Triton calls are the adapters'; the object store and the
database are synchronous, so they run on worker threads.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from uuid import UUID, uuid4, uuid5

from slidestream_contracts.events import InferenceRequestedV1
from slidestream_contracts.model_card import ModelCardV1
from slidestream_inference.adapters.model_bucket import ModelBucket, Versions
from slidestream_inference.adapters.routes import (
    BackfillStore,
    LoadStore,
    Route,
    RouteStore,
)
from slidestream_inference.adapters.slide_catalogue import QcSlide, SlideCatalogue
from slidestream_inference.adapters.triton import ModelNotReadyError, TritonUnavailableError
from slidestream_inference.adapters.triton_replicas import Replica, TritonReplicas
from slidestream_inference.adapters.triton_repository import (
    TritonRefusedError,
    VersionStatistics,
    merge_statistics,
)
from slidestream_inference.model_fleet import (
    ReplicaOutcome,
    ensure_everywhere,
    load_everywhere,
    states_everywhere,
    unload_everywhere,
)
from slidestream_inference.models_views import (
    READY,
    UNLOADED,
    BackfillProgressView,
    BackfillStartedView,
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


def describe(outcomes: Sequence[ReplicaOutcome]) -> str:
    """What went wrong where, of the replicas in ``outcomes`` that failed: the reason alone
    when there is only one replica (the local stack)."""
    failed = [outcome for outcome in outcomes if not outcome.ok]
    if len(outcomes) == 1:
        return failed[0].problem if failed else ""
    return "; ".join(f"{outcome.endpoint}: {outcome.problem}" for outcome in failed)


def replica_failure(
    name: str, action: str, outcomes: Sequence[ReplicaOutcome], *, fault: type[AdminError]
) -> AdminError:
    """The error of an ``action`` that failed on some replicas: ``fault`` when a replica found
    the model at fault, :class:`UnavailableError` when replicas were only unreachable; one
    problem per failed replica."""
    failed = [outcome for outcome in outcomes if not outcome.ok]
    problems = [FieldProblem(f"replica {o.endpoint}", o.problem) for o in failed]
    message = describe(outcomes)
    if len(outcomes) > 1:
        where = f"{len(failed)} of {len(outcomes)} replicas"
        message = f"{action} of {name} failed on {where}: {message}"
    kind = UnavailableError if all(o.unreachable for o in failed) else fault
    return kind(message, problems)


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
    triton: TritonReplicas
    """Every Triton replica: loads and unloads reach each (explicit model control)."""
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

    async def _replicas(self) -> Sequence[Replica]:
        try:
            replicas = await self.triton.replicas()
        except TritonUnavailableError as error:
            raise UnavailableError(str(error)) from error
        if not replicas:
            raise UnavailableError("no Triton replica")
        return replicas

    async def _resolve(self) -> tuple[Sequence[Replica], str]:
        """Every Triton replica, or none and why (a view shows the states as unknown)."""
        try:
            return await self.triton.replicas(), ""
        except TritonUnavailableError as error:
            return (), str(error)

    async def list_models(self) -> ModelsView:
        """Every model in the bucket with its versions' cards and each replica's state."""
        models = await asyncio.to_thread(self.bucket.models)
        replicas, down = await self._resolve()
        views = []
        for name, versions in models.items():
            states = await states_everywhere(replicas, name)
            views.append(
                ModelView(
                    name=name,
                    versions=[
                        version_view(version, card, states, down)
                        for version, card in versions.items()
                    ],
                )
            )
        return ModelsView(models=views)

    async def status(self, name: str) -> ModelStatusView:
        """One model: versions with state (per replica too), reason and device; Triton's
        statistics per version summed over the replicas (count, mean queue and compute time);
        when the models API last loaded it."""
        versions = await self._versions(name)
        replicas, down = await self._resolve()
        states = await states_everywhere(replicas, name)
        serving = [
            replica
            for replica, replica_states in zip(replicas, states, strict=True)
            if any(state.state == READY for state in replica_states.versions.values())
        ]
        device, statistics = await self._serving(name, serving)
        views = [version_view(v, card, states, down, device=device) for v, card in versions.items()]
        loaded_at = await asyncio.to_thread(self.loads.loaded_at, name)
        return ModelStatusView(
            name=name,
            versions=views,
            statistics=[StatisticsView(**asdict(entry)) for entry in statistics],
            loaded_at=loaded_at,
        )

    async def _serving(
        self, name: str, serving: Sequence[Replica]
    ) -> tuple[str | None, list[VersionStatistics]]:
        """Where the model's instances run (the first serving replica says) and its statistics
        over the replicas serving it."""
        device: str | None = None
        statistics: list[list[VersionStatistics]] = []
        for replica in serving:
            try:
                device = device or await replica.repository.device(name)
                statistics.append(await replica.repository.statistics(name))
            except (TritonRefusedError, TritonUnavailableError):
                pass  # unloaded or gone between the calls: the states already say so
        return device, merge_statistics(statistics)

    async def load(self, name: str) -> LoadedView:
        """Load a model on every Triton replica and prove it answers as its cards declare.

        1. the model must have a version in the bucket;
        2. each replica loads it from the repository (every version: ``version_policy: all``),
           all at the same time: explicit model control loads only on the server asked;
        3. on each replica, each version with a card must be ``READY``;
        4. canary on each replica (:mod:`slidestream_inference.model_fleet`);
        5. ready only when every replica passed. A model fault on any replica unloads the model
           from all of them and answers why, per replica; a replica that could not be reached
           answers "unavailable" (the others keep the model; load again). Success records the
           load time (the model is wanted from then on: the reconciler keeps it on every
           replica) and answers with each replica's canary.
        """
        versions = await self._versions(name)
        outcomes = await load_everywhere(await self._replicas(), name, versions)
        if any(not outcome.ok for outcome in outcomes):
            raise replica_failure(name, "load", outcomes, fault=CanaryFailedError)
        canaries = {o.endpoint: o.canary for o in outcomes if o.canary is not None}
        slowest_s = max(canary.seconds for canary in canaries.values())
        await asyncio.to_thread(self.loads.record, name, slowest_s)
        first = next(iter(canaries.values()))
        return LoadedView(name=name, state=READY, canary=first, replicas=canaries)

    async def restore(self, name: str) -> bool:
        """Load ``name`` again (with its canary) on each replica missing it, if the models API
        loaded it and nobody unloaded it since: Triton in explicit model-control mode forgets
        every model when it restarts, and a new replica starts with none. Whether the model is
        wanted; no replica answering is :class:`TritonUnavailableError` (the slide waits), a
        failed canary :class:`ModelNotReadyError` (retried, then a dead letter): the consume
        path calls this."""
        if await asyncio.to_thread(self.loads.loaded_at, name) is None:
            return False
        versions = await self._versions(name)
        outcomes = await ensure_everywhere(await self.triton.replicas(), name, versions)
        loaded = [outcome.endpoint for outcome in outcomes if outcome.canary is not None]
        if loaded:
            logger.info(
                "reloaded a model Triton replicas no longer served",
                extra={"model": name, "replicas": loaded},
            )
        failed = [outcome for outcome in outcomes if not outcome.ok]
        if failed:
            message = f"{name} could not be loaded again: " + describe(outcomes)
            if all(outcome.unreachable for outcome in failed):
                raise TritonUnavailableError(message)  # Triton still starting: the slide waits
            raise ModelNotReadyError(message)
        return True

    async def unload(self, name: str) -> UnloadedView:
        """Unload every version of a model from every Triton replica and forget its load time.

        The load time goes first: the reconciler and ``restore`` load only what has one, so a
        replica that cannot be reached now does not get the model back once it answers (a
        restarted one has nothing loaded anyway); unloading again finishes the job."""
        await self._versions(name)
        await asyncio.to_thread(self.loads.forget, name)
        outcomes = await unload_everywhere(await self._replicas(), name)
        if any(not outcome.ok for outcome in outcomes):
            raise replica_failure(name, "unload", outcomes, fault=InvalidRequestError)
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
