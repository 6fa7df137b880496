"""A DICOM WSI series as a scanner sends it: two pyramid levels, label and overview, with the
planted PHI in patient, study, equipment, specimen, free-text and private attributes.

Each instance is built with conversion's own dataset builder
(:func:`slidestream_wsi.convert.dicom_out.build_dataset`: the VL Whole Slide Microscopy Image
IOD, PS3.3 §A.32.8), so the sample has the modules and the geometry of what the product writes.
Over that, the identity a scanner writes replaces conversion's pseudonymous one: random UIDs, the
planted patient, study, equipment and specimen values, dates, free text and a private block;
the de-identification marks conversion sets (PS3.15 §E) are removed, as a scanner writes none.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pydicom
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

from slidestream_samples.labels import label_image, macro_image
from slidestream_samples.phi import TOKENS, PlantedSlide
from slidestream_samples.pixels import LEVEL0_HEIGHT_PX, LEVEL0_WIDTH_PX, TILE_PX, levels
from slidestream_wsi.convert.dicom_out import InstanceGeometry, SlideDescription, build_dataset
from slidestream_wsi.convert.icc import srgb_profile
from slidestream_wsi.convert.model import DicomIdentity

DICOM_LEVEL0_MPP_UM = 0.25
"""Level-0 spacing of the DICOM sample (Pixel Spacing 0.00025 mm)."""
SCAN_DATE = "19871123"
SCAN_TIME = "040506"
UID_PURPOSES = ("study", "series", "frame", "pyramid", "dimension", "specimen")
"""The series-wide UIDs a scanner draws once per series (random here, as a scanner's are)."""
TILED = ("VOLUME", "THUMBNAIL")
"""Image Type values 3 written as TILED_FULL frames; label and overview are one frame each, as
scanners write them."""
BURNED_IN = ("LABEL", "OVERVIEW")
"""Image Type values 3 whose pixels show the slide label (PS3.3 §C.8.12.4.1.1)."""


def _encode_jpeg(tile: npt.NDArray[np.uint8]) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(tile).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _frames(image: npt.NDArray[np.uint8]) -> Iterator[bytes]:
    """TILED_FULL frames, row by row; edge tiles padded with near-white glass."""
    height, width = image.shape[:2]
    for y in range(0, height, TILE_PX):
        for x in range(0, width, TILE_PX):
            tile = np.full((TILE_PX, TILE_PX, 3), 240, dtype=np.uint8)
            part = image[y : y + TILE_PX, x : x + TILE_PX]
            tile[: part.shape[0], : part.shape[1]] = part
            yield _encode_jpeg(tile)


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def _slide() -> SlideDescription:
    return SlideDescription(
        identity=DicomIdentity(slide_id="planted-sample"),
        mpp=(DICOM_LEVEL0_MPP_UM, DICOM_LEVEL0_MPP_UM),
        level0_size=(LEVEL0_WIDTH_PX, LEVEL0_HEIGHT_PX),
        objective_power=20.0,
        icc_profile=srgb_profile(),
        color_space="SRGB",
        options_key="sample",
        source_lossy=True,
    )


def _geometry(image: npt.NDArray[np.uint8], flavor: str, instance: int) -> InstanceGeometry:
    height, width = image.shape[:2]
    tiled = flavor in TILED
    return InstanceGeometry(
        name=f"instance-{instance}",
        flavor=flavor,
        width=width,
        height=height,
        tile_width=TILE_PX if tiled else width,
        tile_height=TILE_PX if tiled else height,
        compression="jpeg",
        photometric="YBR_FULL_422",
        instance_number=instance,
        derived=False,
        downsample=LEVEL0_WIDTH_PX / width,
    )


def _plant_uids(ds: Dataset, uids: Mapping[str, str]) -> None:
    """The scanner's UIDs in place of conversion's slide-derived ones."""
    meta = ds.file_meta
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.SourceApplicationEntityTitle = "ZORROWELL_AE"
    # Not written by slidestream: pydicom fills in its own implementation identity.
    del meta.ImplementationClassUID
    del meta.ImplementationVersionName
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = uids["study"]
    ds.SeriesInstanceUID = uids["series"]
    ds.FrameOfReferenceUID = uids["frame"]
    ds.PyramidUID = uids["pyramid"]
    ds.DimensionOrganizationSequence[0].DimensionOrganizationUID = uids["dimension"]
    for index in ds.DimensionIndexSequence:
        index.DimensionOrganizationUID = uids["dimension"]


def _plant_patient_and_study(ds: Dataset) -> None:
    """Patient and General Study modules (PS3.3 §C.7.1.1, §C.7.2.1) as the scanner filled them;
    a scanner's original is not de-identified, so conversion's marks go."""
    del ds.PatientIdentityRemoved
    del ds.DeidentificationMethod
    ds.PatientName = TOKENS["patient_name"]
    ds.PatientID = TOKENS["patient_id"]
    ds.PatientBirthDate = "19611123"
    ds.PatientSex = "M"
    ds.ReferringPhysicianName = "Zorrowell^Ida"
    ds.AccessionNumber = TOKENS["accession"]
    ds.StudyID = TOKENS["study"]
    ds.StudyDescription = TOKENS["free_text"]
    ds.StudyDate = SCAN_DATE
    ds.StudyTime = SCAN_TIME
    ds.SeriesDate = SCAN_DATE
    ds.ContentDate = SCAN_DATE
    ds.ContentTime = SCAN_TIME
    ds.AcquisitionDateTime = SCAN_DATE + SCAN_TIME


DICOM_SCANNER_MODEL = "Generator"
"""ManufacturerModelName (0008,1090) of the DICOM sample."""


def _plant_equipment(ds: Dataset) -> None:
    """General Equipment (PS3.3 §C.7.5.1), the operator, free text and a private block."""
    ds.Manufacturer = "Synthetic"
    ds.ManufacturerModelName = DICOM_SCANNER_MODEL
    ds.SoftwareVersions = "1.0"
    ds.DeviceSerialNumber = TOKENS["serial"]
    ds.InstitutionName = TOKENS["institution"]
    ds.StationName = TOKENS["hostname"]
    ds.OperatorsName = TOKENS["operator"]
    ds.ImageComments = (
        "Aperio Image Library v12.0.15|AppMag = 20|"
        f"Filename = {TOKENS['filename']}|User = {TOKENS['operator']}"
    )
    contributing = Dataset()
    contributing.Manufacturer = "Converter"
    contributing.InstitutionName = TOKENS["institution"]
    ds.ContributingEquipmentSequence = Sequence([contributing])
    block = ds.private_block(0x0009, "ZORROWELL PRIVATE", create=True)
    block.add_new(0x01, "LO", TOKENS["patient_id"])
    block.add_new(0x02, "LT", TOKENS["free_text"])


def _plant_specimen(ds: Dataset, uids: Mapping[str, str]) -> None:
    """Specimen module (PS3.3 §C.7.6.22): the barcode as container, the specimen identifier
    also as a TEXT content item of its preparation (where de-identification must look too)."""
    ds.ContainerIdentifier = TOKENS["barcode"]
    specimen = ds.SpecimenDescriptionSequence[0]
    specimen.SpecimenIdentifier = TOKENS["specimen"]
    specimen.SpecimenUID = uids["specimen"]
    item = Dataset()
    item.ValueType = "TEXT"
    item.ConceptNameCodeSequence = Sequence([_code("121041", "DCM", "Specimen Identifier")])
    item.TextValue = TOKENS["specimen"]
    step = Dataset()
    step.SpecimenPreparationStepContentItemSequence = Sequence([item])
    specimen.SpecimenPreparationSequence = Sequence([step])


def _wsi_dataset(
    image: npt.NDArray[np.uint8], flavor: str, uids: Mapping[str, str], instance: int
) -> Dataset:
    geometry = _geometry(image, flavor, instance)
    ds = build_dataset(_slide(), geometry)
    _plant_uids(ds, uids)
    _plant_patient_and_study(ds)
    _plant_equipment(ds)
    _plant_specimen(ds, uids)
    burned_in = "YES" if flavor in BURNED_IN else "NO"
    ds.BurnedInAnnotation = burned_in
    ds.SpecimenLabelInImage = burned_in
    # The scanner's own figure, in place of conversion's placeholder (patched after writing).
    ds.LossyImageCompressionRatio = 10
    frames = list(_frames(image)) if flavor in TILED else [_encode_jpeg(image)]
    ds.PixelData = encapsulate(frames)
    ds["PixelData"].VR = "OB"
    return ds


def make_dicom_series(directory: Path) -> PlantedSlide:
    folder = directory / "dicom_series"
    folder.mkdir(parents=True, exist_ok=True)
    uids = {name: generate_uid() for name in UID_PURPOSES}
    lv = levels()
    files: list[Path] = []
    items = [
        (lv[0], "VOLUME"),
        (lv[1], "VOLUME"),
        (label_image(), "LABEL"),
        (macro_image(), "OVERVIEW"),
    ]
    for instance, (image, flavor) in enumerate(items, start=1):
        ds = _wsi_dataset(image, flavor, uids, instance)
        path = folder / f"instance_{instance}.dcm"
        pydicom.dcmwrite(path, ds, enforce_file_format=True)
        files.append(path)
    return PlantedSlide("dicom", folder, tuple(files))
