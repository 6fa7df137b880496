"""The routes table: which models run on which slides (written through the models API,
read by every QC event). Revision ``0002_routes`` creates it; its columns are the contract
between the API that writes it and the workflow that reads it."""

from __future__ import annotations

from sqlmodel import Field

from slidestream_inference.adapters.tables import InferenceTable


class InferenceRouteRow(InferenceTable, table=True):
    """One model's route for one tenant; ``project``/``stain`` narrow it (``None``: any),
    ``version`` pins one (``None``: the latest version Triton has ready)."""

    __tablename__ = "inference_routes"

    model_name: str = Field(primary_key=True, max_length=63)
    tenant: str = Field(primary_key=True, max_length=63)
    project: str | None = Field(default=None, max_length=128)
    stain: str | None = Field(default=None, max_length=64)
    min_qc: str = Field(default="pass", max_length=8)
    """``pass``: only slides QC passed; ``warn``: passed or warned. Failed slides never run."""
    version: str | None = Field(default=None, max_length=9)
