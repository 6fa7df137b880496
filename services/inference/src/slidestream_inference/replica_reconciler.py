"""Every Triton replica serves the wanted models: a loop beside the service's consumers.

Triton in explicit model-control mode starts with nothing loaded, so a restarted replica, or one
the autoscaler just added, serves no model until it is told to, and every slide it would get
waits on a reload. Every ``TRITON_RECONCILE_INTERVAL_S`` (a periodic job of the service) a round:

1. reads the wanted models: those loaded through the models API and not unloaded since
   (``inference_model_loads``);
2. lists the replicas (the headless Service's addresses, or the one ``TRITON_GRPC``);
3. on each replica, all at once, loads each wanted model none of whose versions is ``READY``
   there, with its canary (:func:`slidestream_inference.model_fleet.ensure_on`; a failed
   canary unloads it from that replica again). Models nobody asked for are left alone;
4. logs what it loaded and what failed, and sets ``slidestream_inference_triton_models_missing``
   per replica: the wanted models that replica still does not serve after the round (alert on
   it staying above zero).

Each inference replica runs this loop; two that find the same gap both ask for the load, which
costs Triton a second load request of the model, not a wrong answer. A model unloaded during a
round is checked again just before its load, so an unload is not undone.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Gauge

from slidestream_inference.adapters.model_bucket import ModelBucket, Versions
from slidestream_inference.adapters.routes import LoadStore
from slidestream_inference.adapters.triton import TritonUnavailableError
from slidestream_inference.adapters.triton_replicas import Replica, TritonReplicas
from slidestream_inference.model_fleet import ReplicaFaultError, ensure_on

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReconcileMetrics:
    missing: Gauge

    @classmethod
    def register(cls, registry: CollectorRegistry) -> ReconcileMetrics:
        return cls(
            missing=Gauge(
                "slidestream_inference_triton_models_missing",
                "Wanted models a Triton replica did not serve after the last reconcile round.",
                ["replica"],
                registry=registry,
            )
        )


@dataclass
class ReplicaReconciler:
    replicas: TritonReplicas
    loads: LoadStore
    bucket: ModelBucket
    metrics: ReconcileMetrics
    _reported: set[str] = field(default_factory=set)
    """Replicas the gauge has a series for (a series of a replica gone is removed)."""

    async def reconcile_once(self) -> dict[str, list[str]]:
        """One round; the wanted models each replica still misses after it, by endpoint."""
        wanted = await asyncio.to_thread(self.loads.wanted)
        try:
            replicas = await self.replicas.replicas()
        except TritonUnavailableError as error:
            logger.warning("no Triton replica to reconcile", extra={"error": str(error)})
            return {}
        cards: dict[str, Versions] = {}
        for name in wanted:
            versions = await asyncio.to_thread(self.bucket.versions, name)
            if versions:
                cards[name] = versions
            else:
                logger.warning("a wanted model has no version in the bucket", extra={"model": name})
        missing = dict(
            await asyncio.gather(*(self._reconcile(replica, cards) for replica in replicas))
        )
        self._report(missing)
        return missing

    async def _reconcile(
        self, replica: Replica, cards: dict[str, Versions]
    ) -> tuple[str, list[str]]:
        missing: list[str] = []
        for name, versions in cards.items():
            try:
                if not await self._still_wanted(name):
                    continue
                canary = await ensure_on(replica, name, versions)
            except ReplicaFaultError as error:
                missing.append(name)
                logger.warning(
                    "a Triton replica does not serve a wanted model",
                    extra={"replica": replica.endpoint, "model": name, "error": str(error)},
                )
                continue
            if canary is not None:
                logger.info(
                    "loaded a wanted model on a Triton replica missing it",
                    extra={"replica": replica.endpoint, "model": name, "canary_s": canary.seconds},
                )
        return replica.endpoint, missing

    async def _still_wanted(self, name: str) -> bool:
        return await asyncio.to_thread(self.loads.loaded_at, name) is not None

    def _report(self, missing: dict[str, list[str]]) -> None:
        for endpoint in self._reported - set(missing):
            self.metrics.missing.remove(endpoint)
        for endpoint, names in missing.items():
            self.metrics.missing.labels(replica=endpoint).set(len(names))
        self._reported = set(missing)
