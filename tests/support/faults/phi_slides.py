"""Slides with PHI where the unit tests and the samples put none (scenario o).

``slidestream_samples`` plants its :data:`~slidestream_samples.phi.TOKENS` in first-IFD
baseline tags, EXIF, XMP and IPTC of the first IFD, Aperio's usual properties, DICOM's patient,
study, equipment and specimen modules and one private block. The slides here add, each with
invented identities of their own (:data:`NEW_PHI`):

* a painted TIFF pyramid: PHI in the ImageDescription of level 1, XMP on level 2, an unknown
  private ASCII tag (65010) on level 0, a UTF-16 string in an UNDEFINED private tag (65011) on
  level 1; the client's file name; the upload's free ``meta``; its manifest's ``case_id`` and
  a ``project`` (free text) that repeats it;
* an Aperio SVS: properties no scanner writes (``Slide Comment``, ``OrderingPhysician``) and
  PHI in the ImageDescription of a lower level;
* a zipped DICOM series: a person's name three sequences deep, a private block of another group
  (and one inside a sequence item), the patient's name of the label instance alone, and member
  names holding a name and an MRN.
"""

from __future__ import annotations

import csv
import hashlib
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
import tifffile
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

NEW_PHI: dict[str, str] = {
    "ifd1_description": "Reviewed by Dr Oswin Vantreece",
    "ifd2_xmp": "XMP-Author-Perpetua-Grindlewick",
    "private_tag": "MRN-5530-8817",
    "utf16_tag": "Tamsin Orrowby",
    "filename": "Halvard_Quennel_MRN-6621-0043",
    "meta_note": "Patient Ysolde Marchbank DOB 1958-02-14",
    "manifest_case": "CASE-Ferroway-7719",
    "svs_comment": "Pt Evander Thistlecombe",
    "svs_physician": "Dr Lucasta Pellinore",
    "svs_level_description": "Scanned for Cordelia Wexhampton",
    "dicom_nested": "Crawshay^Wilhelmina",
    "dicom_private": "ACC-RZ-40417",
    "dicom_private_nested": "Bartholomew Inchcape",
    "dicom_label_patient": "Fellowes^Ignatius",
    "zip_member": "Brannoch_Ottilie_MRN-3390",
}
SURNAMES = (
    "Vantreece",
    "Grindlewick",
    "Orrowby",
    "Quennel",
    "Marchbank",
    "Ferroway",
    "Thistlecombe",
    "Pellinore",
    "Wexhampton",
    "Crawshay",
    "Inchcape",
    "Fellowes",
    "Brannoch",
)
"""Each identity's rarest part alone: found even where the rest was rewritten."""
TILE_PX = 256


@dataclass(frozen=True)
class PhiUpload:
    """One file to upload, the PHI it carries, and how to send it."""

    name: str
    path: Path
    phi: tuple[str, ...]
    """In the file's bytes (the scenario checks that the original in quarantine holds them)."""
    beside: tuple[str, ...] = ()
    """Sent beside the bytes: the file name, the upload's meta, the manifest."""
    meta: dict[str, str] = field(default_factory=dict)
    manifest: Path | None = None


def _pyramid(rgb: np.ndarray, levels: int = 3) -> list[np.ndarray]:
    out = [rgb]
    for _ in range(levels - 1):
        previous = out[-1]
        h, w = previous.shape[0] // 2 * 2, previous.shape[1] // 2 * 2
        quad = previous[:h, :w].reshape(h // 2, 2, w // 2, 2, 3).mean(axis=(1, 3))
        out.append(quad.astype(np.uint8))
    return out


def painted_tiff(folder: Path, seed: int) -> PhiUpload:
    """The painted pyramid with PHI on levels 1 and 2 and in private tags."""
    from slidestream_samples.painting import paint_tissue

    folder.mkdir(parents=True, exist_ok=True)
    painted = paint_tissue(2048, 1536, seed=seed)
    path = folder / f"{NEW_PHI['filename']}.tiff"
    xmp = f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><dc:creator>{NEW_PHI["ifd2_xmp"]}</dc:creator>'
    xmp += "</x:xmpmeta>"
    utf16 = NEW_PHI["utf16_tag"].encode("utf-16-le")
    extra = {
        0: [(65010, 2, 0, NEW_PHI["private_tag"], True)],
        1: [(65011, 7, len(utf16), utf16, True)],
        2: [(700, 1, len(xmp), xmp.encode(), True)],
    }
    with tifffile.TiffWriter(path) as tif:
        for index, level in enumerate(_pyramid(painted.rgb)):
            spacing_um = painted.mpp_um * painted.rgb.shape[1] / level.shape[1]
            tif.write(
                level,
                tile=(TILE_PX, TILE_PX),
                photometric="rgb",
                compression="jpeg",
                compressionargs={"level": 90},
                resolution=(1e4 / spacing_um, 1e4 / spacing_um),
                resolutionunit="CENTIMETER",
                subfiletype=1 if index else 0,
                description=NEW_PHI["ifd1_description"] if index == 1 else None,
                metadata=None,
                extratags=extra[index],
            )
    manifest = _manifest(folder, path)
    phi = ("ifd1_description", "ifd2_xmp", "private_tag", "utf16_tag")
    return PhiUpload(
        "painted-tiff",
        path,
        tuple(NEW_PHI[k] for k in phi),
        (NEW_PHI["filename"], NEW_PHI["meta_note"], NEW_PHI["manifest_case"]),
        meta={"note": NEW_PHI["meta_note"]},
        manifest=manifest,
    )


def _manifest(folder: Path, slide: Path) -> Path:
    path = folder / "manifest.csv"
    digest = hashlib.sha256(slide.read_bytes()).hexdigest()
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["filename", "sha256", "case_id", "organ", "project"])
        case = NEW_PHI["manifest_case"]
        writer.writerow([slide.name, digest, case, "colon", f"Study for {case}"])
    return path


def aperio_svs(folder: Path, work: Path) -> PhiUpload:
    """The samples' planted SVS, with properties no scanner writes and PHI on level 1."""
    from slidestream_samples import make_svs

    work.mkdir(parents=True, exist_ok=True)
    planted = make_svs(work)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "aperio-phi.svs"
    shutil.copyfile(planted.path, path)
    with tifffile.TiffFile(path) as tif:
        first = str(tif.pages[0].description)
        pages = len(tif.pages)
    extra = f"|Slide Comment = {NEW_PHI['svs_comment']}|OrderingPhysician = "
    tifffile.tiffcomment(path, first + extra + NEW_PHI["svs_physician"], pageindex=0)
    # Page 2 is level 1 (after the thumbnail): its description names someone else.
    level_description = first + f"|Comment = {NEW_PHI['svs_level_description']}"
    tifffile.tiffcomment(path, level_description, pageindex=min(2, pages - 1))
    keys = ("svs_comment", "svs_physician", "svs_level_description")
    return PhiUpload("aperio-svs", path, tuple(NEW_PHI[k] for k in keys))


def dicom_zip(folder: Path, work: Path) -> PhiUpload:
    """The samples' planted DICOM series, zipped under PHI member names, with PHI deep in
    sequences, in another private group, and as the label instance's patient name alone."""
    from slidestream_samples import make_dicom_series

    work.mkdir(parents=True, exist_ok=True)
    series = make_dicom_series(work)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "series-phi.zip"
    member_dir = NEW_PHI["zip_member"]
    with zipfile.ZipFile(path, "w") as archive:
        for file in series.files:
            ds = pydicom.dcmread(file)
            _plant_dicom(ds)
            pydicom.dcmwrite(file, ds, enforce_file_format=True)
            archive.write(file, arcname=f"{member_dir}/{member_dir}_{file.name}")
    keys = ("dicom_nested", "dicom_private", "dicom_private_nested", "dicom_label_patient")
    return PhiUpload("dicom-zip", path, (*(NEW_PHI[k] for k in keys), member_dir))


def _plant_dicom(ds: Dataset) -> None:
    person = Dataset()
    person.PersonName = NEW_PHI["dicom_nested"]
    person.ValueType = "PNAME"
    middle = Dataset()
    middle.ContentSequence = Sequence([person])
    outer = Dataset()
    outer.ContentSequence = Sequence([middle])
    ds.AcquisitionContextSequence = Sequence([outer])
    block = ds.private_block(0x0029, "ACME WSI 1.0", create=True)
    block.add_new(0x10, "LO", NEW_PHI["dicom_private"])
    inner = Dataset()
    inner_block = inner.private_block(0x0031, "ACME WSI NOTES", create=True)
    inner_block.add_new(0x01, "LT", NEW_PHI["dicom_private_nested"])
    block.add_new(0x11, "SQ", Sequence([inner]))
    if "LABEL" in list(ds.get("ImageType", [])):
        ds.PatientName = NEW_PHI["dicom_label_patient"]


def phi_uploads(folder: Path, seed: int) -> list[PhiUpload]:
    """The three slides, under ``folder``."""
    return [
        painted_tiff(folder / "tiff", seed),
        aperio_svs(folder / "svs", folder / "work-svs"),
        dicom_zip(folder / "dcm", folder / "work-dcm"),
    ]
