"""The catalog service's settings: the shared fields, its name, its HTTP port, where tokens are
resolved and where vectors live."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from slidestream_platform.settings import ServiceSettings


class CatalogSettings(ServiceSettings):
    service_name: str = "catalog"
    http_port: int = 8091
    upload_api_url: str = "http://127.0.0.1:8090"
    """The upload API, which owns partner tokens: a caller's token is resolved to its tenant by
    ``GET /v1/info`` there (the catalog never stores tokens)."""
    token_cache_s: float = Field(default=30.0, ge=0)
    """How long a resolved token is trusted before asking again (a revoked token stops working
    within this time)."""
    dead_letter_depth_interval_s: float = Field(default=30.0, gt=0)
    """How often the depth of every ``dlq.<service>.v1`` is measured for
    ``slidestream_dead_letter_depth`` (the operators' alert on dead letters appearing)."""
    milvus_uri: str = "http://127.0.0.1:19530"
    """Milvus: the local stack's Milvus Lite server, or a Milvus cluster's proxy."""
    milvus_token: str = ""
    milvus_index_type: Literal["IVF_FLAT", "FLAT"] = "FLAT"
    """FLAT (exact) by default: Milvus Lite 2.5 searches its growing segments through a fixed
    interim IVF index and ignores ``nprobe``, which cost recall in docs/benchmarks.md
    (search-vectors); IVF_FLAT suits a Milvus cluster, whose sealed segments honour it."""
    milvus_nprobe: int = Field(default=32, ge=1, le=65536)
    """IVF lists searched per query (IVF_FLAT only)."""
    mosaic_tiles: int = Field(default=32, ge=1, le=64)
    """Representative tiles per slide in the vector index (Yottixel's mosaic)."""
    converted_bucket: str = "converted"
    """Where the converted pyramids are (thumbnails of similar tiles)."""
    derived_bucket: str = "derived"
    """Where model runs write their embeddings."""
    work_dir: Path | None = None
    """Scratch space for the level files crops are read from; the system temp dir when unset."""
    inference_api_url: str = "http://127.0.0.1:8095"
    """The inference service's models API: embeds an uploaded image patch with the same model
    (through Triton) for similarity queries by patch."""
    search_statement_timeout_ms: int = Field(default=5_000, gt=0)
    """Longest a search statement may run before the database cancels it (PostgreSQL
    ``statement_timeout``; an interrupt on SQLite): no query can hold the process."""
    search_export_max_rows: int = Field(default=1_000_000, gt=0)
    """Most rows one cohort export streams (the response says when it stopped there)."""
    embed_token_file: Path | None = None
    """File holding the catalog's token for the models API (scope ``models:embed``)."""
