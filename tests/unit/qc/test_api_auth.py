"""The qc service serves no API: health and metrics only (a route added here must need a token,
and then belongs in a test like the catalog's)."""

from __future__ import annotations

from pathlib import Path

from slidestream_qc.main import create_app
from slidestream_qc.settings import QcSettings
from tests.support.routes import guarded_routes


def test_the_service_serves_health_and_metrics_only(tmp_path: Path) -> None:
    assert guarded_routes(create_app(QcSettings(data_dir=tmp_path))) == set()
