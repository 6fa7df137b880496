"""What de-identification does with the choices the standard leaves open."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from slidestream_wsi.pseudonyms import PseudonymKey


class AssociatedImagePolicy(StrEnum):
    REMOVE = "remove"
    """Unlink label and macro/overview images and wipe their bytes (the default)."""
    REPLACE_WITH_PSEUDONYM = "replace_with_pseudonym"
    """Wipe them and put a generated label that shows only the pseudonym in the label's place."""


class DicomDatePolicy(StrEnum):
    REMOVE = "remove"
    """PS3.15 Table E.1-1 actions: dates and times emptied, removed or set to a dummy value."""
    SHIFT = "shift"
    """PS3.15 E.3.6 Retain Longitudinal Temporal Information with Modified Dates Option: every
    date is moved back by the same keyed number of days per patient (see
    :func:`slidestream_wsi.pseudonyms.date_shift_days`), so intervals survive."""


@dataclass(frozen=True, slots=True)
class DeidPolicy:
    """Inputs of one de-identification."""

    tenant: str
    key: PseudonymKey
    """Keys the UID remapping and the date shift (the pseudonym itself is made by the caller)."""
    pseudonym: str
    """Written where an identifier must stay present (DICOM Patient ID and Name, Container and
    Specimen Identifier) and drawn on a replacement label."""
    associated_images: AssociatedImagePolicy = AssociatedImagePolicy.REMOVE
    dicom_dates: DicomDatePolicy = DicomDatePolicy.REMOVE
