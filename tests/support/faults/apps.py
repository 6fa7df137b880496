"""Every service's FastAPI app, built (not started) only to list its routes, and where the
running local stack serves each: the probes of scenario p cover a route the day it is added."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from slidestream_devstack.ports import LOOPBACK, UPLOAD_HOOKS_PORT
from tests.support.faults.probes import Route, app_routes


def _secret(folder: Path, name: str, char: str = "s") -> Path:
    path = folder / name
    path.write_text(char * 64, encoding="utf-8")
    return path


def _upload(folder: Path) -> tuple[FastAPI, FastAPI]:
    from slidestream_upload import hooks
    from slidestream_upload.main import create_app
    from slidestream_upload.settings import UploadSettings

    settings = UploadSettings(
        data_dir=folder, tusd_hooks_secret_file=_secret(folder, "tusd-hooks-secret")
    )
    internal = FastAPI()
    internal.include_router(hooks.router)
    return create_app(settings), internal


def _catalog(folder: Path) -> FastAPI:
    from slidestream_catalog.main import create_app
    from slidestream_catalog.settings import CatalogSettings

    return create_app(CatalogSettings(data_dir=folder, work_dir=folder / "work"))


def _inference(folder: Path) -> FastAPI:
    from slidestream_inference import main
    from slidestream_inference.settings import InferenceSettings
    from tests.support.inference import FakeTriton

    tokens = folder / "api-tokens.json"
    tokens.write_text("[]", encoding="utf-8")
    settings = InferenceSettings(data_dir=folder, api_tokens_file=tokens)
    return main.create_app(settings, triton=FakeTriton())


def _deid(folder: Path) -> FastAPI:
    from slidestream_deid.main import create_app
    from slidestream_deid.settings import DeidSettings

    return create_app(
        DeidSettings(
            data_dir=folder,
            pseudonym_key_file=_secret(folder, "pseudonym-key"),
            vault_key_file=_secret(folder, "vault-key", "v"),
        )
    )


def _convert(folder: Path) -> FastAPI:
    from slidestream_convert.main import create_app
    from slidestream_convert.settings import ConvertSettings

    return create_app(ConvertSettings(data_dir=folder))


def _qc(folder: Path) -> FastAPI:
    from slidestream_qc.main import create_app
    from slidestream_qc.settings import QcSettings

    return create_app(QcSettings(data_dir=folder))


def service_routes(work: Path, env: dict[str, str]) -> list[Route]:
    """Every route of every service, with the local stack's base URL of its listener."""
    folders = {name: work / name for name in ("upload", "catalog", "inference", "deid", "qc")}
    folders["convert"] = work / "convert"
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    partner, hooks = _upload(folders["upload"])
    apps: list[tuple[str, str, FastAPI]] = [
        ("upload", env["UPLOAD_API"], partner),
        ("upload-hooks", f"http://{LOOPBACK}:{UPLOAD_HOOKS_PORT}", hooks),
        ("catalog", env["CATALOG_API"], _catalog(folders["catalog"])),
        ("inference", env["INFERENCE_API"], _inference(folders["inference"])),
        ("deid", env["DEID_API"], _deid(folders["deid"])),
        ("convert", env["CONVERT_API"], _convert(folders["convert"])),
        ("qc", env["QC_API"], _qc(folders["qc"])),
    ]
    if env.get("SEARCH_API", env["CATALOG_API"]) != env["CATALOG_API"]:
        apps.append(("search", env["SEARCH_API"], apps[2][2]))
    routes: list[Route] = []
    for service, base_url, app in apps:
        routes += app_routes(service, base_url, app)
    return routes
