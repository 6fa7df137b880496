"""A minimal stand-in of ``slidestream_modelrepo``'s API (the spec's functions, simplified), put
in place only while the library is not on this branch: the models API's tests then run, and
once the library lands :func:`install_if_missing` does nothing and the real one is tested."""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass
from types import ModuleType

from pydantic import ValidationError

from slidestream_contracts.model_card import ModelCardV1


@dataclass(frozen=True, slots=True)
class FieldProblem:
    field: str
    message: str


class ModelPackageError(ValueError):
    def __init__(self, problems: list[FieldProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))


@dataclass(frozen=True, slots=True)
class ModelPackage:
    card: ModelCardV1
    files: dict[str, bytes]

    def card_key(self) -> str:
        return f"{self.card.name}/{self.card.version}/card.json"


def read_card(data: bytes) -> ModelCardV1:
    try:
        return ModelCardV1.model_validate(json.loads(data))
    except (ValueError, ValidationError) as error:
        raise ModelPackageError([FieldProblem("card", str(error))]) from error


def pack_upload(card: ModelCardV1, files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for key, data in sorted(files.items()):
            member = tarfile.TarInfo(key)
            member.size = len(data)
            archive.addfile(member, io.BytesIO(data))
    return buffer.getvalue()


def unpack_upload(data: bytes, *, max_bytes: int) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r|gz") as archive:
            for member in archive:
                stream = archive.extractfile(member)
                if stream is not None:
                    files[member.name] = stream.read()
    except (tarfile.TarError, OSError) as error:
        raise ModelPackageError([FieldProblem("archive", str(error))]) from error
    if sum(map(len, files.values())) > max_bytes:
        raise ModelPackageError([FieldProblem("archive", f"more than {max_bytes} bytes")])
    return files


def _card_json(card: ModelCardV1) -> bytes:
    return card.model_dump_json().encode()


def package_torchscript(model_pt: bytes, card: ModelCardV1, *, gpus: int) -> ModelPackage:
    kind = "KIND_GPU" if gpus > 0 else "KIND_CPU"
    version_dir = f"{card.name}/{card.version}"
    return ModelPackage(
        card,
        {
            f"{card.name}/config.pbtxt": f'backend: "python"\n# {kind}\n'.encode(),
            f"{version_dir}/model.py": b"# wrapper\n",
            f"{version_dir}/model.pt": model_pt,
            f"{version_dir}/card.json": _card_json(card),
        },
    )


def package_directory(files: dict[str, bytes], card: ModelCardV1) -> ModelPackage:
    if "config.pbtxt" not in files:
        raise ModelPackageError([FieldProblem("config.pbtxt", "missing")])
    packaged = {f"{card.name}/config.pbtxt": files["config.pbtxt"]}
    for key, data in files.items():
        _, _, rest = key.partition("/")
        if rest:
            packaged[f"{card.name}/{card.version}/{rest}"] = data
    packaged[f"{card.name}/{card.version}/card.json"] = _card_json(card)
    return ModelPackage(card, packaged)


def signature_problems(new: ModelCardV1, existing: ModelCardV1) -> list[FieldProblem]:
    problems = []
    if new.input.model_dump(include={"name", "tile_size_px"}) != existing.input.model_dump(
        include={"name", "tile_size_px"}
    ):
        problems.append(FieldProblem("input", f"differs from version {existing.version}"))
    shape = {"name", "kind", "width", "dtype", "size_px"}
    if [o.model_dump(include=shape) for o in new.outputs] != [
        o.model_dump(include=shape) for o in existing.outputs
    ]:
        problems.append(FieldProblem("outputs", f"differ from version {existing.version}"))
    return problems


def install_if_missing(module: ModuleType) -> None:
    """Give ``module`` (``slidestream_modelrepo``) the stand-ins when it lacks its API."""
    if hasattr(module, "read_card"):
        return
    for name in (
        "FieldProblem",
        "ModelPackage",
        "ModelPackageError",
        "pack_upload",
        "package_directory",
        "package_torchscript",
        "read_card",
        "signature_problems",
        "unpack_upload",
    ):
        setattr(module, name, globals()[name])
