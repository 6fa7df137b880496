"""Getting a model ready to push, on the team's machine: read its card, check everything the
server would check (with the same library), and pack the upload.

``PATH`` is a TorchScript file, with its card beside it (``card.json``, ``card.yaml``), or a
Triton model directory (``config.pbtxt`` and a version directory), with its card inside.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from slidestream_contracts.model_card import ModelCardV1
from slidestream_modelrepo import (
    FieldProblem,
    ModelPackage,
    ModelPackageError,
    pack_upload,
    package_directory,
    package_torchscript,
    read_card,
)

CARD_NAMES = ("card.json", "card.yaml", "card.yml")
TORCHSCRIPT_UPLOAD_NAME = "model.pt"
"""A TorchScript push uploads this file alone: the server generates the wrapper and config."""
LOCAL_CHECK_GPUS = 0
"""The generated config is checked as the CPU one: the deployment's GPU choice changes only the
instance group, which the card does not constrain."""


@dataclass(frozen=True, slots=True)
class PreparedPush:
    card: ModelCardV1
    package: ModelPackage
    """What the bucket will hold, as checked here."""
    upload_files: dict[str, bytes]
    """What is sent (see :func:`slidestream_modelrepo.pack_upload`)."""

    def archive(self) -> bytes:
        return pack_upload(self.card, self.upload_files)


def prepare_push(
    path: Path,
    *,
    name: str | None = None,
    version: str | None = None,
    card_path: Path | None = None,
) -> PreparedPush:
    """The checked push of ``path``; ``name``/``version`` replace the card's. Raises
    :class:`ModelPackageError` listing every problem (a missing file is one too)."""
    if not path.exists():
        raise _problem(str(path), "no such file or directory")
    folder = path if path.is_dir() else path.parent
    card_file = card_path or _card_beside(folder)
    card = read_card(_read(card_file), name=name, version=version)
    if path.is_dir():
        files = _directory_files(path, skip=card_file)
        return PreparedPush(card, package_directory(files, card), files)
    model_pt = _read(path)
    package = package_torchscript(model_pt, card, gpus=LOCAL_CHECK_GPUS)
    return PreparedPush(card, package, {TORCHSCRIPT_UPLOAD_NAME: model_pt})


def _card_beside(folder: Path) -> Path:
    for candidate in CARD_NAMES:
        if (folder / candidate).is_file():
            return folder / candidate
    raise _problem("card", f"no {' or '.join(CARD_NAMES[:2])} in {folder}: pass --card")


def _directory_files(root: Path, *, skip: Path) -> dict[str, bytes]:
    """Every file under ``root`` by its path relative to it; hidden files (``.DS_Store``,
    ``.git``) and the card file are left out."""
    files = {}
    skipped = skip.resolve()
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if any(part.startswith(".") for part in relative.parts) or path.is_dir():
            continue
        if path.resolve() == skipped:
            continue
        files[relative.as_posix()] = _read(path)
    return files


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise _problem(str(path), f"cannot be read: {error.strerror or error}") from error


def _problem(field: str, message: str) -> ModelPackageError:
    return ModelPackageError([FieldProblem(field, message)])
