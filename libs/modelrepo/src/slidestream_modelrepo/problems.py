"""What is wrong with a pushed model, field by field, so a team can fix everything in one go."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import ValidationError

_PYDANTIC_VALUE_ERROR_PREFIX = "Value error, "
"""Pydantic's prefix on the message of a ``ValueError`` raised by a validator."""


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One thing to fix: ``field`` names it (``outputs.0.labels``, ``config.max_batch_size``,
    a file path), ``message`` says what is wrong and, where it can, what would be right."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class ModelPackageError(ValueError):
    """A model (card, config, files or archive) that cannot be pushed; ``problems`` lists every
    reason found, never only the first."""

    def __init__(self, problems: Iterable[FieldProblem]) -> None:
        self.problems: tuple[FieldProblem, ...] = tuple(problems)
        if not self.problems:
            raise ValueError("a ModelPackageError needs at least one problem")
        super().__init__("\n".join(str(problem) for problem in self.problems))


def problems_from_validation(error: ValidationError, *, prefix: str = "") -> list[FieldProblem]:
    """One problem per pydantic error, its field the dotted location (``outputs.0.width``).

    A tuple whose only item is invalid also gets "should have at least 1 item" from pydantic
    (the item is dropped before the length check); that echo of the item's own problem is left
    out."""
    details = error.errors()
    locations = [tuple(detail["loc"]) for detail in details]
    problems = []
    for detail, location in zip(details, locations, strict=True):
        echo = detail["type"] == "too_short" and any(
            other[: len(location)] == location and len(other) > len(location) for other in locations
        )
        if echo:
            continue
        dotted = ".".join(str(part) for part in location)
        field = ".".join(part for part in (prefix, dotted) if part) or "card"
        message = str(detail["msg"]).removeprefix(_PYDANTIC_VALUE_ERROR_PREFIX)
        problems.append(FieldProblem(field, message))
    return problems
