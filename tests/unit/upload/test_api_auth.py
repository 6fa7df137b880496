"""Every route of the upload service's partner port needs a partner token (401 without one);
only health and metrics are open, and tusd's hooks are not there at all."""

from __future__ import annotations

from pathlib import Path

from slidestream_upload.main import create_app
from slidestream_upload.settings import UploadSettings
from tests.support.routes import answers_without_a_token


async def test_every_route_of_the_partner_port_answers_401_without_a_token(
    tmp_path: Path,
) -> None:
    secret_file = tmp_path / "tusd-hooks-secret"
    secret_file.write_text("h" * 64)
    app = create_app(UploadSettings(data_dir=tmp_path, tusd_hooks_secret_file=secret_file))

    answers = await answers_without_a_token(app)

    assert {
        ("GET", "/v1/info"),
        ("GET", "/v1/uploads/{slide_id}"),
        ("GET", "/v1/slides/{slide_id}"),
        ("GET", "/v1/batches/{batch_id}"),
        ("POST", "/v1/batches"),
    } <= set(answers)
    assert answers == dict.fromkeys(answers, 401)
