"""The fake PHI planted in the samples, and what a planted sample is.

The identities are invented; nothing here comes from a real patient. Each token is unique
enough that a byte-scan hit is never a coincidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

TOKENS: dict[str, str] = {
    "patient_name": "Quixwell^Jonah",
    "patient_id": "MRN-7781-2290",
    "accession": "ACC-S24-99431",
    "barcode": "BARCODE-88-1234-XQ",
    "filename": "Quixwell_Jonah_S24-99431",
    "operator": "Operator Brynhild Zaetz",
    "hostname": "PATHLAB-WKS-4471",
    "serial": "SCANNER-SN-55129",
    "institution": "St Ignatius Zorrowell Hospital",
    "scan_date": "1987-11-23T04:05:06",
    "free_text": "Biopsy of Jonah Quixwell born 1961",
    "copyright": "Copyright Zorrowell Pathology",
    "xmp": "XMP-Creator-Quentin-Zarb",
    "iptc": "IPTC-Byline-Zelda-Quorn",
    "exif": "EXIF-Owner-Ximena-Qualt",
    "specimen": "SPECIMEN-S24-99431-A1",
    "experimenter": "Xavier Quillfeather",
    "study": "STUDY-ZQ-7731",
}

LABEL_TOKENS = ("patient_name", "accession", "barcode")
"""The tokens drawn into label and macro images (found by eye, not by a byte scan)."""


@dataclass(frozen=True)
class PlantedSlide:
    layout: str
    path: Path
    """The slide file, or the folder of a DICOM series."""
    files: tuple[Path, ...]
    tokens: tuple[str, ...] = field(default_factory=lambda: tuple(TOKENS.values()))
    has_label: bool = True
