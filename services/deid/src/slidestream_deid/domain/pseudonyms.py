"""Which pseudonyms a slide gets, and what the vault must remember of them.

Every identifier with a role (case, specimen, patient) gets
:func:`slidestream_wsi.pseudonyms.pseudonym` under the current key version. The *primary*
pseudonym is the one written into the slide where an identifier must stay present (DICOM Patient
ID and Name, a replacement label): the patient's if known, else the case's, else the specimen's,
else one derived from the slide id (role ``slide``; the slide id is not patient data, so it gets
no vault row).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

from slidestream_deid.domain.identifiers import (
    ROLE_CASE,
    ROLE_PATIENT,
    ROLE_SPECIMEN,
    SlideIdentifiers,
)
from slidestream_wsi.pseudonyms import PseudonymKey, pseudonym

ROLE_SLIDE = "slide"
PRIMARY_ROLE_ORDER = (ROLE_PATIENT, ROLE_CASE, ROLE_SPECIMEN)


@dataclass(frozen=True, slots=True)
class VaultEntry:
    """One mapping original → pseudonym (the vault is the only place that holds both)."""

    tenant: str
    role: str
    original_id: str = field(repr=False)
    key_version: int
    pseudonym: str


@dataclass(frozen=True, slots=True)
class Pseudonymisation:
    by_role: dict[str, str]
    """Role → pseudonym, as published in ``slides.deidentified.v1``."""
    entries: tuple[VaultEntry, ...]
    primary: str


def pseudonymise(
    key: PseudonymKey, tenant: str, slide_id: UUID, identifiers: SlideIdentifiers
) -> Pseudonymisation:
    originals = identifiers.by_role()
    entries = tuple(
        VaultEntry(tenant, role, original, key.version, pseudonym(key, tenant, role, original))
        for role, original in sorted(originals.items())
    )
    by_role = {entry.role: entry.pseudonym for entry in entries}
    primary_role = next((role for role in PRIMARY_ROLE_ORDER if role in by_role), None)
    primary = (
        by_role[primary_role]
        if primary_role is not None
        else pseudonym(key, tenant, ROLE_SLIDE, str(slide_id))
    )
    return Pseudonymisation(by_role=by_role, entries=entries, primary=primary)
