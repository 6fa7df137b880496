"""Which outputs a slide gets: the tenant's choice, or the platform default (both)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, get_args

OutputName = Literal["dicom", "tiff"]
KNOWN_OUTPUTS: frozenset[OutputName] = frozenset(get_args(OutputName))


class OutputPolicyError(ValueError):
    """A configured output list is empty or names an unknown output."""


def outputs_for(
    tenant: str, default: Sequence[str], per_tenant: Mapping[str, Sequence[str]]
) -> frozenset[OutputName]:
    chosen = frozenset(per_tenant.get(tenant, default))
    if not chosen:
        raise OutputPolicyError(f"no output configured for tenant {tenant!r}")
    unknown = chosen - KNOWN_OUTPUTS
    if unknown:
        raise OutputPolicyError(f"unknown outputs {sorted(unknown)} for tenant {tenant!r}")
    return frozenset(name for name in KNOWN_OUTPUTS if name in chosen)
