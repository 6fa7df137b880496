"""The deid service serves no API: health and metrics only (a route added here must need a
token, and then belongs in a test like the catalog's)."""

from __future__ import annotations

from pathlib import Path

from slidestream_deid.main import create_app
from slidestream_deid.settings import DeidSettings
from tests.support.routes import guarded_routes


def test_the_service_serves_health_and_metrics_only(tmp_path: Path) -> None:
    key_file = tmp_path / "pseudonym-key"
    key_file.write_text("k" * 64)
    vault_key_file = tmp_path / "vault-key"
    vault_key_file.write_text("v" * 64)
    settings = DeidSettings(
        data_dir=tmp_path, pseudonym_key_file=key_file, vault_key_file=vault_key_file
    )
    app = create_app(settings)
    assert guarded_routes(app) == set()
