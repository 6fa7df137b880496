"""Reading a model card (JSON or YAML) and comparing a new version's signature with the old."""

from __future__ import annotations

import json
from enum import Enum
from typing import Any

import yaml
from pydantic import ValidationError

from slidestream_contracts.model_card import ModelCardV1
from slidestream_modelrepo.problems import (
    FieldProblem,
    ModelPackageError,
    problems_from_validation,
)

CARD_FIELD = "card"


def read_card(data: bytes, *, name: str | None = None, version: str | None = None) -> ModelCardV1:
    """The card in ``data`` (a JSON object, or YAML: JSON is tried when the text starts with
    ``{``). ``name`` and ``version`` replace the card's own (the CLI's ``--name``/``--version``)
    before it is validated, so a card may leave them out. Every invalid field is reported in one
    :class:`ModelPackageError`."""
    document = _parse_document(data)
    if name is not None:
        document["name"] = name
    if version is not None:
        document["version"] = version
    elif isinstance(document.get("version"), int) and not isinstance(document["version"], bool):
        # ``version: 3`` in YAML is an integer; Triton's version directories are its digits.
        document["version"] = str(document["version"])
    try:
        return ModelCardV1.model_validate(document)
    except ValidationError as error:
        raise ModelPackageError(problems_from_validation(error)) from error


def _parse_document(data: bytes) -> dict[str, Any]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ModelPackageError([FieldProblem(CARD_FIELD, f"not UTF-8 text: {error}")]) from error
    try:
        document = json.loads(text) if text.lstrip().startswith("{") else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise ModelPackageError(
            [FieldProblem(CARD_FIELD, f"not valid JSON or YAML: {error}")]
        ) from error
    if not isinstance(document, dict):
        raise ModelPackageError(
            [FieldProblem(CARD_FIELD, "must be a mapping of fields (name, version, input, ...)")]
        )
    return document


def signature_problems(new: ModelCardV1, existing: ModelCardV1) -> list[FieldProblem]:
    """Why ``new`` cannot be another version of ``existing``'s model: every version of a model
    shares one ``config.pbtxt`` (Triton's layout), so the tensors it declares, and the largest
    batch, must stay the same. Labels, normalisation and spacing may change per version."""
    problems = []
    if new.name != existing.name:
        problems.append(FieldProblem("name", f"{new.name!r} is not the model {existing.name!r}"))
    for field, new_value, old_value in (
        ("input.name", new.input.name, existing.input.name),
        ("input.tile_size_px", new.input.tile_size_px, existing.input.tile_size_px),
        ("max_batch_size", new.max_batch_size, existing.max_batch_size),
    ):
        if new_value != old_value:
            problems.append(_changed(field, new_value, old_value, existing.version))
    new_names = [output.name for output in new.outputs]
    old_names = [output.name for output in existing.outputs]
    if new_names != old_names:
        problems.append(_changed("outputs", new_names, old_names, existing.version))
        return problems
    pairs = zip(new.outputs, existing.outputs, strict=True)
    for index, (new_output, old_output) in enumerate(pairs):
        for attribute in ("kind", "width", "dtype", "size_px"):
            new_value = getattr(new_output, attribute)
            old_value = getattr(old_output, attribute)
            if new_value != old_value:
                field = f"outputs.{index}.{attribute}"
                problems.append(_changed(field, new_value, old_value, existing.version))
    return problems


def _changed(field: str, new_value: object, old_value: object, old_version: str) -> FieldProblem:
    return FieldProblem(
        field,
        f"is {_shown(new_value)} but version {old_version} has {_shown(old_value)}: the "
        "versions of a model share one signature (push a new model name to change it)",
    )


def _shown(value: object) -> str:
    return str(value.value) if isinstance(value, Enum) else repr(value)
