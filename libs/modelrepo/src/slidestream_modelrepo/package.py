"""A model made ready for the ``models`` bucket: every object under Triton's layout, checked.

<name>/config.pbtxt          one per model, shared by its versions
<name>/<version>/...         the version's files (``model.py`` + ``model.pt`` for TorchScript)
<name>/<version>/card.json   written last: a version exists once its card does
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from io import BytesIO
from pathlib import PurePosixPath
from typing import Any

from slidestream_contracts.model_card import ModelCardV1
from slidestream_modelrepo.config import (
    CONFIG_FILE,
    config_problems,
    parse_config,
    render_config,
)
from slidestream_modelrepo.problems import FieldProblem, ModelPackageError
from slidestream_modelrepo.wrapper import TORCHSCRIPT_FILE, WRAPPER_FILE, render_wrapper

CARD_FILE = "card.json"
CARD_FILES_BESIDE = frozenset({"card.json", "card.yaml", "card.yml"})
"""Card files a pushed Triton directory may hold at its top (the card is passed on its own)."""
_DEFAULT_MODEL_FILE = {
    "python": "model.py",
    "pytorch": "model.pt",
    "onnxruntime": "model.onnx",
    "tensorrt": "model.plan",
    "openvino": "model.xml",
    "pytorch_libtorch": "model.pt",
    "onnxruntime_onnx": "model.onnx",
    "tensorrt_plan": "model.plan",
    "tensorflow_savedmodel": "model.savedmodel",
    "tensorflow_graphdef": "model.graphdef",
}
"""The file each Triton backend (or platform) loads from a version directory unless the config
names one (Triton's model repository documentation)."""


@dataclass(frozen=True, slots=True)
class ModelPackage:
    card: ModelCardV1
    files: dict[str, bytes]
    """Objects keyed relative to the bucket root, ``card.json`` last (write them in order)."""

    def card_key(self) -> str:
        return f"{self.card.name}/{self.card.version}/{CARD_FILE}"


def package_torchscript(model_pt: bytes, card: ModelCardV1, *, gpus: int) -> ModelPackage:
    """``model_pt`` (``torch.jit.save``'s file) with a generated wrapper and config."""
    if not zipfile.is_zipfile(BytesIO(model_pt)):
        raise ModelPackageError(
            [
                FieldProblem(
                    TORCHSCRIPT_FILE,
                    "not a TorchScript file (torch.jit.save writes a zip archive; a pickled "
                    "state_dict or torch.save of a module is not one)",
                )
            ]
        )
    config_text = render_config(card, gpus=gpus)
    # The generated config must agree with the card by construction; checked all the same.
    problems = config_problems(parse_config(config_text), card)
    if problems:
        raise ModelPackageError(problems)
    version_dir = f"{card.name}/{card.version}"
    return ModelPackage(
        card,
        {
            f"{card.name}/{CONFIG_FILE}": config_text.encode("utf-8"),
            f"{version_dir}/{WRAPPER_FILE}": render_wrapper(card).encode("utf-8"),
            f"{version_dir}/{TORCHSCRIPT_FILE}": model_pt,
            f"{version_dir}/{CARD_FILE}": _card_json(card),
        },
    )


def package_directory(files: dict[str, bytes], card: ModelCardV1) -> ModelPackage:
    """A pushed Triton model directory: ``config.pbtxt`` and one version directory (named as
    the card's version, or any single version, renamed to the card's). A ``card.json`` or
    ``card.yaml`` at its top is left out: ``card`` is the one written."""
    problems = [problem for key in files if (problem := path_problem(key)) is not None]
    if problems:
        raise ModelPackageError(problems)
    config_data = files.get(CONFIG_FILE)
    if config_data is None:
        raise ModelPackageError([FieldProblem(CONFIG_FILE, "missing from the model directory")])
    config = parse_config(config_data.decode("utf-8", errors="replace"))
    problems = config_problems(config, card)
    version_files, layout_problems = _version_files(files, card)
    problems += layout_problems
    if not layout_problems:
        problems += _model_file_problems(config, version_files, card.version)
    if problems:
        raise ModelPackageError(problems)
    packaged = {f"{card.name}/{CONFIG_FILE}": config_data}
    for relative, data in sorted(version_files.items()):
        packaged[f"{card.name}/{card.version}/{relative}"] = data
    packaged[f"{card.name}/{card.version}/{CARD_FILE}"] = _card_json(card)
    return ModelPackage(card, packaged)


def path_problem(key: str) -> FieldProblem | None:
    """Why ``key`` cannot name a file inside a model directory (``None`` when it can)."""
    path = PurePosixPath(key)
    if not key or "\\" in key or "\x00" in key:
        return FieldProblem(key or "(empty)", "not a usable file name")
    if path.is_absolute() or ".." in path.parts or str(path) != key:
        return FieldProblem(key, "must be a plain path inside the model directory")
    return None


def _version_files(
    files: dict[str, bytes], card: ModelCardV1
) -> tuple[dict[str, bytes], list[FieldProblem]]:
    """The version directory's files relative to it, or why the layout is not Triton's."""
    problems = []
    by_version: dict[str, dict[str, bytes]] = {}
    for key, data in files.items():
        top, _, rest = key.partition("/")
        if not rest:
            if key != CONFIG_FILE and key not in CARD_FILES_BESIDE:
                problems.append(
                    FieldProblem(key, "only config.pbtxt and version directories belong here")
                )
        elif not (top.isdigit() and int(top) > 0 and str(int(top)) == top):
            problems.append(FieldProblem(key, f"{top!r} is not a version directory (1, 2, ...)"))
        elif rest != CARD_FILE:  # the card given with the push replaces any copy
            by_version.setdefault(top, {})[rest] = data
    if len(by_version) > 1:
        versions = sorted(by_version, key=int)
        problems.append(
            FieldProblem("version", f"the directory holds versions {versions}: push one at a time")
        )
    elif not by_version:
        problems.append(FieldProblem(card.version, "no version directory with the model's files"))
    return next(iter(by_version.values()), {}), problems


def _model_file_problems(
    config: Any, version_files: dict[str, bytes], version: str
) -> list[FieldProblem]:
    backend = str(config.backend or config.platform)
    expected = str(config.default_model_filename) or _DEFAULT_MODEL_FILE.get(backend)
    if expected is None or any(
        relative == expected or relative.startswith(f"{expected}/") for relative in version_files
    ):
        return []
    return [
        FieldProblem(
            f"{version}/{expected}",
            f"missing: the {backend or 'configured'} backend loads this file",
        )
    ]


def _card_json(card: ModelCardV1) -> bytes:
    return card.model_dump_json(indent=2).encode("utf-8")
