"""The inference service's settings (one frozen class; secrets from files via the base)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from slidestream_platform.settings import ServiceSettings

GIB = 1024**3


class InferenceSettings(ServiceSettings):
    service_name: str = "inference"
    http_port: int = 8095

    converted_bucket: str = "converted"
    derived_bucket: str = "derived"
    models_bucket: str = "models"
    """Triton's model repository: ``<name>/config.pbtxt``, ``<name>/<version>/…``."""

    triton_grpc: str = "127.0.0.1:18001"
    triton_http: str = "http://127.0.0.1:18000"
    triton_replicas_dns: str | None = None
    """A headless Service's name whose DNS A records are every ready Triton pod (the chart sets
    it): models are loaded on each, at ``triton_grpc``'s port. Unset: ``triton_grpc`` is the one
    Triton (the local stack)."""
    triton_reconcile_interval_s: float = Field(default=30.0, gt=0)
    """How often every replica is made to serve the models loaded through the models API (a
    restarted or newly scaled replica starts with none)."""
    triton_gpus: int = Field(default=0, ge=0)
    """GPUs per Triton replica (the chart's ``triton.gpus``): generated configs put their
    instances on ``KIND_GPU`` when positive, ``KIND_CPU`` otherwise."""

    max_requests_in_flight: int = Field(default=4, ge=1, le=64)
    """Triton requests one slide run keeps outstanding (backpressure: never more)."""
    decode_threads: int = Field(default=2, ge=1, le=64)
    """Threads decoding and normalising tiles while batches are in flight."""
    request_batch_tiles: int | None = Field(default=None, ge=1)
    """Tiles per request, at most the model's maximum batch; unset: the card's largest
    preferred batch size. A model's fastest batch depends on the hardware (on the 2-core CPU
    Triton of docs/benchmarks.md the reference model runs 32-tile batches faster per tile than
    64-tile ones; a GPU favours the largest)."""
    triton_timeout_s: float = Field(default=60.0, gt=0)
    """One inference request's deadline; Triton not answering in time is retried."""

    membership_poll_s: float = Field(default=5.0, gt=0)
    """While one slide runs, the consumer's partitions are paused and polled this often, so a
    run longer than ``KAFKA_MAX_POLL_INTERVAL_S`` keeps the group stable (as convert does)."""

    model_load_timeout_s: float = Field(default=300.0, gt=0)
    canary_timeout_s: float = Field(default=60.0, gt=0)
    max_model_upload_bytes: int = Field(default=4 * GIB, gt=0)

    api_tokens_file: Path | None = None
    """JSON list of ``{"name", "sha256", "scopes"}``: who may call the models API (scopes
    ``models:read``, ``models:write``, ``models:embed``). Tokens are stored only as SHA-256
    hashes."""

    work_dir: Path | None = None
    """Scratch space for the level files inference reads; the system temp directory when unset."""
