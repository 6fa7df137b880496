"""The inference pieces of the devstack: Triton on the models bucket, the inference service part,
and the models API token it is started with."""

from __future__ import annotations

import hashlib
import json
import re
import stat
from pathlib import Path

import pytest
from rich.console import Console

from slidestream_catalog.settings import CatalogSettings
from slidestream_devstack import stack
from slidestream_devstack.buckets import BUCKETS, MODELS_BUCKET
from slidestream_devstack.credentials import load_or_create_credentials
from slidestream_devstack.part import StackContext
from slidestream_devstack.paths import StackPaths
from slidestream_devstack.secret_files import (
    DEV_TOKEN_SCOPES,
    embed_token_file,
    inference_api_tokens_file,
    models_token_file,
    read_secret,
)
from slidestream_devstack.services import CatalogServicePart, InferenceServicePart
from slidestream_devstack.settings import DevstackSettings
from slidestream_devstack.triton import TritonLayout, TritonPart, s3_model_repository
from slidestream_inference.settings import InferenceSettings

TOKEN_PATTERN = re.compile(r"ssk_[0-9a-f]{64}")
"""The prefix and 256 bits, hex-encoded."""
PEER_ENV = {
    "KAFKA_BOOTSTRAP": "127.0.0.1:19092",
    "S3_ENDPOINT": "http://127.0.0.1:19000",
    "TRITON_GRPC": "127.0.0.1:18001",
    "TRITON_HTTP": "http://127.0.0.1:18000",
}


@pytest.fixture
def ctx(tmp_path: Path) -> StackContext:
    paths = StackPaths(tmp_path)
    paths.ensure()
    return StackContext(
        paths=paths,
        settings=DevstackSettings(),
        credentials=load_or_create_credentials(paths.credentials_file),
        console=Console(quiet=True),
        peer_env=dict(PEER_ENV),
    )


def test_triton_starts_after_minio_provisioned_its_bucket_and_before_the_services() -> None:
    parts = stack.PARTS_BY_NAME
    assert MODELS_BUCKET in BUCKETS  # MinIO's provisioning creates it
    assert "minio" in parts["triton"].requires
    assert parts["minio"].phase < parts["triton"].phase < parts["inference"].phase
    assert parts["triton"].phase < parts["qc"].phase


def test_selecting_inference_brings_triton_and_the_servers_it_needs() -> None:
    names = [part.name for part in stack.select_parts(["inference"], with_requirements=True)]
    assert set(names) == {"postgres", "minio", "kafka", "triton", "inference"}
    assert stack.PART_NAMES[-1] == "inference"


def test_s3_model_repository_is_tritons_form_for_a_custom_endpoint() -> None:
    assert s3_model_repository("http://127.0.0.1:19000", "models") == (
        "s3://http://127.0.0.1:19000/models"
    )
    assert s3_model_repository("https://s3.example.org:443/", "m") == (
        "s3://https://s3.example.org:443/m"
    )


@pytest.mark.parametrize("endpoint", ["http://minio", "ftp://minio:21", "http://minio:9000/x"])
def test_s3_model_repository_refuses_what_triton_cannot_parse(endpoint: str) -> None:
    with pytest.raises(ValueError, match="host:port"):
        s3_model_repository(endpoint, "models")


def test_triton_reads_the_models_bucket_with_minios_account(
    ctx: StackContext, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    layout = TritonLayout(venv=venv, python_libdir=venv / "lib", site_packages=venv / "site")
    monkeypatch.setattr(TritonPart, "layout", lambda self, ctx: layout)
    part = TritonPart()

    spec = part.launch_spec(ctx)

    assert "--model-repository=s3://http://127.0.0.1:19000/models" in spec.argv
    assert "--model-control-mode=explicit" in spec.argv
    assert "--strict-readiness=false" in spec.argv  # one failed model never hides the server
    assert spec.env["AWS_ACCESS_KEY_ID"] == ctx.credentials.minio_root_user
    assert spec.env["AWS_SECRET_ACCESS_KEY"] == ctx.credentials.minio_root_password
    assert spec.env["AWS_DEFAULT_REGION"] == "us-east-1"
    published = part.env(ctx)
    assert published["TRITON_MODEL_REPOSITORY"] == "s3://http://127.0.0.1:19000/models"
    assert published["MODELS_BUCKET"] == MODELS_BUCKET
    # The secret reaches Triton's process only, never stack.env.
    assert ctx.credentials.minio_root_password not in published.values()


def test_the_models_token_is_generated_once_private_and_256_bits(tmp_path: Path) -> None:
    path = models_token_file(tmp_path)
    token = read_secret(path)

    assert TOKEN_PATTERN.fullmatch(token)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert read_secret(models_token_file(tmp_path)) == token
    assert read_secret(models_token_file(tmp_path / "other")) != token


def test_the_api_tokens_file_holds_the_tokens_hash_and_scopes_only(tmp_path: Path) -> None:
    token = read_secret(models_token_file(tmp_path))
    path = inference_api_tokens_file(tmp_path)

    embed_token = read_secret(embed_token_file(tmp_path))
    entries = json.loads(path.read_text("utf-8"))
    assert entries == [
        {
            "name": "devstack",
            "sha256": hashlib.sha256(token.encode("ascii")).hexdigest(),
            "scopes": ["models:read", "models:write"],
        },
        {
            "name": "catalog",
            "sha256": hashlib.sha256(embed_token.encode("ascii")).hexdigest(),
            "scopes": ["models:embed"],
        },
    ]
    assert set(DEV_TOKEN_SCOPES) == {"models:read", "models:write"}
    assert token not in path.read_text("utf-8")
    assert embed_token not in path.read_text("utf-8")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_api_tokens_file_follows_a_replaced_token(tmp_path: Path) -> None:
    inference_api_tokens_file(tmp_path)
    token_path = models_token_file(tmp_path)
    token_path.unlink()  # a deliberate rotation: delete the token, the next start makes one
    new_token = read_secret(models_token_file(tmp_path))

    entry, _catalog = json.loads(inference_api_tokens_file(tmp_path).read_text("utf-8"))
    assert entry["sha256"] == hashlib.sha256(new_token.encode("ascii")).hexdigest()


def test_the_catalog_gets_its_embed_token_file_and_the_inference_api(
    ctx: StackContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    part = CatalogServicePart()
    part.prepare(ctx)

    spec = part.launch_spec(ctx)

    token_path = Path(spec.env["EMBED_TOKEN_FILE"])
    assert token_path == ctx.paths.local / "secrets" / "embed-token"
    assert TOKEN_PATTERN.fullmatch(read_secret(token_path))
    assert stat.S_IMODE(token_path.stat().st_mode) == 0o600
    assert read_secret(token_path) not in "".join(spec.env.values())
    assert spec.env["INFERENCE_API_URL"] == "http://127.0.0.1:8095"
    for key, value in spec.env.items():
        monkeypatch.setenv(key, value)
    settings = CatalogSettings()
    assert settings.embed_token_file == token_path
    assert settings.inference_api_url == spec.env["INFERENCE_API_URL"]


def test_the_inference_service_gets_triton_the_bucket_and_the_tokens_file(
    ctx: StackContext,
) -> None:
    part = InferenceServicePart()
    part.prepare(ctx)

    spec = part.launch_spec(ctx)

    assert spec.argv[1:] == ["-m", "slidestream_inference.main"]
    assert spec.env["HTTP_PORT"] == "8095"
    assert spec.env["TRITON_GRPC"] == PEER_ENV["TRITON_GRPC"]
    assert spec.env["TRITON_HTTP"] == PEER_ENV["TRITON_HTTP"]
    assert spec.env["MODELS_BUCKET"] == "models"
    assert spec.env["API_TOKENS_FILE"] == str(inference_api_tokens_file(ctx.paths.local))
    assert spec.env["WORK_DIR"] == str(ctx.paths.local / "scratch" / "inference")


def test_stack_env_names_the_api_and_the_token_file_never_the_token(ctx: StackContext) -> None:
    published = InferenceServicePart().env(ctx)

    assert published["INFERENCE_API"] == "http://127.0.0.1:8095"
    token_path = Path(published["MODELS_TOKEN_FILE"])
    assert TOKEN_PATTERN.fullmatch(read_secret(token_path))
    assert read_secret(token_path) not in "".join(published.values())


def test_the_service_environment_is_one_its_settings_class_reads(
    ctx: StackContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = InferenceServicePart().launch_spec(ctx)
    for key, value in spec.env.items():
        monkeypatch.setenv(key, value)

    settings = InferenceSettings()

    assert settings.http_port == 8095
    assert settings.triton_grpc == PEER_ENV["TRITON_GRPC"]
    assert settings.triton_http == PEER_ENV["TRITON_HTTP"]
    assert settings.models_bucket == MODELS_BUCKET
    assert settings.api_tokens_file == Path(spec.env["API_TOKENS_FILE"])
    assert settings.work_dir == Path(spec.env["WORK_DIR"])
