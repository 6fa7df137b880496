"""A DICOM WSI series as a scanner sends it: two pyramid levels, label and overview, with the
planted PHI in patient, study, equipment, specimen, free-text and private attributes."""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pydicom
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.uid import UID, JPEGBaseline8Bit, generate_uid

from slidestream_samples.labels import label_image, macro_image
from slidestream_samples.phi import TOKENS, PlantedSlide
from slidestream_samples.pixels import LEVEL0_WIDTH_PX, TILE_PX, levels


def _encode_jpeg(tile: npt.NDArray[np.uint8]) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(tile).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _frames(image: npt.NDArray[np.uint8]) -> Iterator[bytes]:
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


def _wsi_dataset(
    image: npt.NDArray[np.uint8], flavor: str, uids: Mapping[str, str], instance: int
) -> Dataset:
    height, width = image.shape[:2]
    tiled = flavor in ("VOLUME", "THUMBNAIL")
    frame_h, frame_w = (TILE_PX, TILE_PX) if tiled else (height, width)
    frames = list(_frames(image)) if tiled else [_encode_jpeg(image)]
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID("1.2.840.10008.5.1.4.1.1.77.1.6")
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = JPEGBaseline8Bit
    meta.SourceApplicationEntityTitle = "ZORROWELL_AE"
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = uids["study"]
    ds.SeriesInstanceUID = uids["series"]
    ds.FrameOfReferenceUID = uids["frame"]
    ds.PyramidUID = uids["pyramid"]
    ds.DimensionOrganizationUID = uids["dimension"]
    ds.ImageType = ["ORIGINAL", "PRIMARY", flavor, "NONE"]
    ds.Modality = "SM"
    ds.Manufacturer = "Synthetic"
    ds.ManufacturerModelName = "Generator"
    ds.SoftwareVersions = "1.0"
    ds.DeviceSerialNumber = TOKENS["serial"]
    ds.InstitutionName = TOKENS["institution"]
    ds.StationName = TOKENS["hostname"]
    ds.OperatorsName = TOKENS["operator"]
    ds.ReferringPhysicianName = "Zorrowell^Ida"
    ds.PatientName = TOKENS["patient_name"]
    ds.PatientID = TOKENS["patient_id"]
    ds.PatientBirthDate = "19611123"
    ds.PatientSex = "M"
    ds.AccessionNumber = TOKENS["accession"]
    ds.StudyID = TOKENS["study"]
    ds.StudyDescription = TOKENS["free_text"]
    ds.StudyDate = "19871123"
    ds.StudyTime = "040506"
    ds.SeriesDate = "19871123"
    ds.ContentDate = "19871123"
    ds.ContentTime = "040506"
    ds.AcquisitionDateTime = "19871123040506"
    ds.SeriesNumber = 1
    ds.InstanceNumber = instance
    ds.ImageComments = (
        "Aperio Image Library v12.0.15|AppMag = 20|"
        f"Filename = {TOKENS['filename']}|User = {TOKENS['operator']}"
    )
    ds.ContainerIdentifier = TOKENS["barcode"]
    ds.IssuerOfTheContainerIdentifierSequence = Sequence()
    ds.ContainerTypeCodeSequence = Sequence([_code("433466003", "SCT", "Microscope slide")])
    specimen = Dataset()
    specimen.SpecimenIdentifier = TOKENS["specimen"]
    specimen.SpecimenUID = uids["specimen"]
    specimen.IssuerOfTheSpecimenIdentifierSequence = Sequence()
    step = Dataset()
    item = Dataset()
    item.ValueType = "TEXT"
    item.ConceptNameCodeSequence = Sequence([_code("121041", "DCM", "Specimen Identifier")])
    item.TextValue = TOKENS["specimen"]
    step.SpecimenPreparationStepContentItemSequence = Sequence([item])
    specimen.SpecimenPreparationSequence = Sequence([step])
    ds.SpecimenDescriptionSequence = Sequence([specimen])
    contributing = Dataset()
    contributing.Manufacturer = "Converter"
    contributing.InstitutionName = TOKENS["institution"]
    ds.ContributingEquipmentSequence = Sequence([contributing])
    ds.AcquisitionContextSequence = Sequence()
    ds.VolumetricProperties = "VOLUME"
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "YBR_FULL_422"
    ds.PlanarConfiguration = 0
    ds.NumberOfFrames = len(frames)
    ds.Rows = frame_h
    ds.Columns = frame_w
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.BurnedInAnnotation = "YES" if flavor in ("LABEL", "OVERVIEW") else "NO"
    ds.SpecimenLabelInImage = "YES" if flavor in ("LABEL", "OVERVIEW") else "NO"
    ds.FocusMethod = "AUTO"
    ds.ExtendedDepthOfField = "NO"
    ds.LossyImageCompression = "01"
    ds.LossyImageCompressionMethod = "ISO_10918_1"
    ds.LossyImageCompressionRatio = 10
    ds.TotalPixelMatrixColumns = width
    ds.TotalPixelMatrixRows = height
    ds.TotalPixelMatrixFocalPlanes = 1
    ds.NumberOfOpticalPaths = 1
    ds.DimensionOrganizationType = "TILED_FULL"
    ds.ImageOrientationSlide = [0, -1, 0, -1, 0, 0]
    ds.ImagedVolumeWidth = width * 0.00025 * (2048 / width if tiled else 1)
    ds.ImagedVolumeHeight = height * 0.00025 * (2048 / width if tiled else 1)
    ds.ImagedVolumeDepth = 0.0
    origin = Dataset()
    origin.XOffsetInSlideCoordinateSystem = 0
    origin.YOffsetInSlideCoordinateSystem = 0
    ds.TotalPixelMatrixOriginSequence = Sequence([origin])
    shared = Dataset()
    measures = Dataset()
    spacing = 0.00025 * (LEVEL0_WIDTH_PX / width)
    measures.PixelSpacing = [spacing, spacing]
    measures.SliceThickness = 0
    shared.PixelMeasuresSequence = Sequence([measures])
    frame_type = Dataset()
    frame_type.FrameType = ds.ImageType
    shared.WholeSlideMicroscopyImageFrameTypeSequence = Sequence([frame_type])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    optical = Dataset()
    optical.OpticalPathIdentifier = "0"
    optical.IlluminationTypeCodeSequence = Sequence(
        [_code("111744", "DCM", "Brightfield illumination")]
    )
    optical.IlluminationColorCodeSequence = Sequence([_code("414298005", "SCT", "Full Spectrum")])
    ds.OpticalPathSequence = Sequence([optical])
    block = ds.private_block(0x0009, "ZORROWELL PRIVATE", create=True)
    block.add_new(0x01, "LO", TOKENS["patient_id"])
    block.add_new(0x02, "LT", TOKENS["free_text"])
    ds.PixelData = encapsulate(frames)
    ds["PixelData"].VR = "OB"
    return ds


def make_dicom_series(directory: Path) -> PlantedSlide:
    folder = directory / "dicom_series"
    folder.mkdir(parents=True, exist_ok=True)
    uids = {
        name: generate_uid()
        for name in ("study", "series", "frame", "pyramid", "dimension", "specimen")
    }
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
