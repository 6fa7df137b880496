"""The modules of a VL Whole Slide Microscopy Image instance (PS3.3 §A.32.8), one builder each.

Every builder sets the attributes of one module (or of one functional group macro of the
shared functional groups) on the dataset it is given; :func:`~.dicom_out.build_dataset` runs
them in the IOD's order. pydicom writes a dataset in tag order, so the order of the builders
changes nothing in the bytes written.

Output is deterministic: UIDs come from the slide id (PS3.5 §B.2, UUID-derived ``2.25`` UIDs by
default), dates and times are the constants below (the slide's real acquisition time is
identifying and was removed by de-identification), and the ICC profile carried over is the
source's or a fixed sRGB profile.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    JPEG2000,
    UID,
    ExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    VLWholeSlideMicroscopyImageStorage,
    generate_uid,
)

from slidestream_wsi.convert.model import Compression, DicomIdentity
from slidestream_wsi.dicom.values import attribute_value

CONTENT_DATE = "20000101"
CONTENT_TIME = "000000"
"""Type 1 dates (Multi-frame Functional Groups ContentDate/Time, WSI AcquisitionDateTime) are a
constant: nothing patient-related, and identical on a redelivery."""
MANUFACTURER = "slidestream"
MODEL_NAME = "slidestream-wsi convert"
SOFTWARE_VERSION = "1"
IMPLEMENTATION_VERSION_NAME = "SLIDESTREAM_1"
SLICE_THICKNESS_MM = 0.001
"""Imaged volume depth and slice thickness are unknown after conversion; DICOM wants a non-zero
value (dciodvfy rejects 0), and 1 µm is the nominal depth of field wsidicom assumes too."""
RATIO_PLACEHOLDER = "1.0000000000000"
"""Lossy Image Compression Ratio until the frames are written: DicomInstanceWriter patches this
fixed-width value (PS3.5 §6.2: DS, at most 16 bytes)."""

_TRANSFER_SYNTAX: dict[Compression, UID] = {
    "jpeg": JPEGBaseline8Bit,
    "jpeg2000": JPEG2000,
    "none": ExplicitVRLittleEndian,
}
# PS3.3 §C.7.6.1.1.5: Lossy Image Compression Method defined terms.
_LOSSY_METHOD: dict[Compression, str] = {"jpeg": "ISO_10918_1", "jpeg2000": "ISO_15444_1"}
_UID_NAMESPACE = uuid.UUID("6f1c1f1e-8c1a-5b7e-9d1e-5d6c1e7a0b42")
"""Namespace of our name-based UUIDs (a fixed random value; changing it changes every UID)."""
# PS3.3 §C.8.12.4.1.x: Column / Row Position In Total Image Pixel Matrix, in the Plane
# Position (Slide) functional group.
_COLUMN_POSITION_TAG = 0x0048021E
_ROW_POSITION_TAG = 0x0048021F
_PLANE_POSITION_SLIDE_SEQUENCE_TAG = 0x0048021A


def derived_uid(identity: DicomIdentity, *purpose: str) -> UID:
    """A UID determined by the slide id and ``purpose`` (same input, same UID).

    Under ``2.25`` it is the integer of a name-based UUID (RFC 9562 §5.5, UUIDv5), as PS3.5
    §B.2 defines; pydicom's ``generate_uid(prefix=None)`` would draw a random UUID instead.
    Under another root, pydicom derives the digits from a hash of the same names.
    """
    entropy = ["slidestream-wsi-convert", identity.slide_id, *purpose]
    root = identity.uid_root.rstrip(".")
    if root == "2.25":
        name = "\x1f".join(entropy)
        return UID(f"2.25.{uuid.uuid5(_UID_NAMESPACE, name).int}")
    return generate_uid(prefix=root + ".", entropy_srcs=entropy)


@dataclass(frozen=True, slots=True)
class SlideDescription:
    """What every instance of the slide shares."""

    identity: DicomIdentity
    mpp: tuple[float, float] | None
    """Level-0 (x, y) microns per pixel."""
    level0_size: tuple[int, int]
    """Level-0 (width, height) in pixels: the imaged volume."""
    objective_power: float | None
    icc_profile: bytes
    color_space: str | None
    """Color Space (0028,2002), ``SRGB`` when the profile is our fixed sRGB one."""
    options_key: str
    """Options that change pixels (tile size, quality); part of the SOP Instance UID entropy."""
    source_lossy: bool
    """The source was lossy-compressed (PS3.3 §C.7.6.1.1.5: once lossy, always flagged)."""


@dataclass(frozen=True, slots=True)
class InstanceGeometry:
    name: str
    """``level-<i>`` or ``thumbnail``: part of the SOP Instance UID entropy."""
    flavor: str
    """Value 3 of Image Type: VOLUME or THUMBNAIL."""
    width: int
    height: int
    tile_width: int
    tile_height: int
    compression: Compression
    photometric: str
    instance_number: int
    derived: bool
    """Value 1 of Image Type: DERIVED for re-encoded, generated or thumbnail pixels."""
    downsample: float
    """Level-0 pixels per pixel of this instance (dyadic levels are exact powers of 2)."""

    @property
    def frame_count(self) -> int:
        columns = -(-self.width // self.tile_width)
        rows = -(-self.height // self.tile_height)
        return columns * rows


def sop_instance_uid(slide: SlideDescription, geometry: InstanceGeometry) -> UID:
    return derived_uid(slide.identity, "instance", geometry.name, slide.options_key)


def file_meta(slide: SlideDescription, geometry: InstanceGeometry) -> FileMetaDataset:
    """File Meta Information (PS3.10 §7.1)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = VLWholeSlideMicroscopyImageStorage
    meta.MediaStorageSOPInstanceUID = sop_instance_uid(slide, geometry)
    meta.TransferSyntaxUID = _TRANSFER_SYNTAX[geometry.compression]
    meta.ImplementationClassUID = derived_uid(DicomIdentity("implementation"), "slidestream")
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    return meta


def sop_common(ds: Dataset, slide: SlideDescription, geometry: InstanceGeometry) -> None:
    """SOP Common (PS3.3 §C.12.1)."""
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = VLWholeSlideMicroscopyImageStorage
    ds.SOPInstanceUID = sop_instance_uid(slide, geometry)


def patient(ds: Dataset, slide: SlideDescription, geometry: InstanceGeometry) -> None:
    """Patient (PS3.3 §C.7.1.1), pseudonymous: the identity removed (0012,0062)."""
    identity = slide.identity
    ds.PatientName = _pseudonym("PatientName", identity.patient_pseudonym)
    ds.PatientID = _pseudonym("PatientID", identity.patient_pseudonym)
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = "slidestream de-identification"


def general_study(ds: Dataset, slide: SlideDescription, geometry: InstanceGeometry) -> None:
    """General Study (PS3.3 §C.7.2.1): slides of one case share the study."""
    identity = slide.identity
    ds.StudyInstanceUID = derived_uid(
        identity, "study", *(["case", identity.case_pseudonym] if identity.case_pseudonym else [])
    )
    ds.StudyDate = ""
    ds.StudyTime = ""
    ds.ReferringPhysicianName = ""
    ds.StudyID = ""
    # SH, 16 characters (PS3.5 Table 6.2-1): the case pseudonym in its shortened form.
    ds.AccessionNumber = _pseudonym("AccessionNumber", identity.case_pseudonym)


def series(ds: Dataset, slide: SlideDescription, geometry: InstanceGeometry) -> None:
    """General Series (PS3.3 §C.7.3.1) and Whole Slide Microscopy Series (§C.8.12.3)."""
    ds.Modality = "SM"
    ds.SeriesInstanceUID = derived_uid(slide.identity, "series", slide.options_key)
    ds.SeriesNumber = 1


def frame_of_reference(ds: Dataset, slide: SlideDescription, geometry: InstanceGeometry) -> None:
    """Frame of Reference (PS3.3 §C.7.4.1)."""
    ds.FrameOfReferenceUID = derived_uid(slide.identity, "frame-of-reference")
    ds.PositionReferenceIndicator = "SLIDE_CORNER"


def equipment(ds: Dataset, slide: SlideDescription, geometry: InstanceGeometry) -> None:
    """General Equipment (PS3.3 §C.7.5.1) and Enhanced General Equipment (§C.7.5.2)."""
    ds.Manufacturer = MANUFACTURER
    ds.ManufacturerModelName = MODEL_NAME
    ds.DeviceSerialNumber = "0"
    ds.SoftwareVersions = SOFTWARE_VERSION


def multi_resolution_pyramid(
    ds: Dataset, slide: SlideDescription, geometry: InstanceGeometry
) -> None:
    """Multi-Resolution Pyramid (PS3.3 Table A.32.8-1): every level and the thumbnail share
    one Pyramid UID (0008,0019)."""
    ds.PyramidUID = derived_uid(slide.identity, "pyramid", slide.options_key)


def image_type(geometry: InstanceGeometry) -> list[str]:
    """Image Type and Frame Type values (PS3.3 §C.8.12.4.1.1)."""
    return [
        "DERIVED" if geometry.derived else "ORIGINAL",
        "PRIMARY",
        geometry.flavor,
        "RESAMPLED" if geometry.derived else "NONE",
    ]


def whole_slide_image(ds: Dataset, slide: SlideDescription, geometry: InstanceGeometry) -> None:
    """Whole Slide Microscopy Image (PS3.3 §C.8.12.4), the Image Pixel attributes it
    constrains (§C.7.6.3) included."""
    ds.ImageType = image_type(geometry)
    ds.AcquisitionDateTime = CONTENT_DATE + CONTENT_TIME
    ds.VolumetricProperties = "VOLUME"
    ds.SpecimenLabelInImage = "NO"
    ds.BurnedInAnnotation = "NO"
    ds.FocusMethod = "AUTO"
    ds.ExtendedDepthOfField = "NO"
    _lossy_compression(ds, slide, geometry)
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = geometry.photometric
    ds.PlanarConfiguration = 0
    ds.Rows = geometry.tile_height
    ds.Columns = geometry.tile_width
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.TotalPixelMatrixColumns = geometry.width
    ds.TotalPixelMatrixRows = geometry.height
    ds.TotalPixelMatrixFocalPlanes = 1
    ds.DimensionOrganizationType = "TILED_FULL"
    origin = Dataset()
    origin.XOffsetInSlideCoordinateSystem = 0.0
    origin.YOffsetInSlideCoordinateSystem = 0.0
    ds.TotalPixelMatrixOriginSequence = Sequence([origin])
    ds.ImageOrientationSlide = [0, -1, 0, -1, 0, 0]
    if slide.mpp is not None:
        level0_w, level0_h = slide.level0_size
        ds.ImagedVolumeWidth = level0_w * slide.mpp[0] / 1000.0
        ds.ImagedVolumeHeight = level0_h * slide.mpp[1] / 1000.0
        ds.ImagedVolumeDepth = SLICE_THICKNESS_MM


def _lossy_compression(ds: Dataset, slide: SlideDescription, geometry: InstanceGeometry) -> None:
    """Lossy Image Compression (PS3.3 §C.7.6.1.1.5): once lossy, always flagged."""
    lossy = slide.source_lossy or geometry.derived or geometry.compression != "none"
    ds.LossyImageCompression = "01" if lossy else "00"
    if lossy:
        # The ratio is known once the frames are written (see RATIO_PLACEHOLDER).
        ds.LossyImageCompressionRatio = RATIO_PLACEHOLDER
        if geometry.compression in _LOSSY_METHOD:
            ds.LossyImageCompressionMethod = _LOSSY_METHOD[geometry.compression]


def multi_frame(ds: Dataset, slide: SlideDescription, geometry: InstanceGeometry) -> None:
    """Multi-frame Functional Groups (PS3.3 §C.7.6.16): the shared groups are Whole Slide
    Microscopy Image Frame Type (§C.8.12.6.1), Optical Path Identification (§C.8.12.6.2) and,
    with a known spacing, Pixel Measures (§C.7.6.16.2.1)."""
    ds.InstanceNumber = geometry.instance_number
    ds.ContentDate = CONTENT_DATE
    ds.ContentTime = CONTENT_TIME
    ds.NumberOfFrames = geometry.frame_count
    shared = Dataset()
    frame_type = Dataset()
    frame_type.FrameType = image_type(geometry)
    shared.WholeSlideMicroscopyImageFrameTypeSequence = Sequence([frame_type])
    optical_ref = Dataset()
    optical_ref.OpticalPathIdentifier = "0"
    shared.OpticalPathIdentificationSequence = Sequence([optical_ref])
    if slide.mpp is not None:
        measures = Dataset()
        # PS3.3 §10.7.1.3: Pixel Spacing is (row spacing, column spacing) in mm.
        mpp_x = slide.mpp[0] * geometry.downsample
        mpp_y = slide.mpp[1] * geometry.downsample
        measures.PixelSpacing = [decimal_string(mpp_y / 1000.0), decimal_string(mpp_x / 1000.0)]
        measures.SliceThickness = SLICE_THICKNESS_MM
        shared.PixelMeasuresSequence = Sequence([measures])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])


def multi_frame_dimension(ds: Dataset, slide: SlideDescription, geometry: InstanceGeometry) -> None:
    """Multi-frame Dimension (PS3.3 §C.7.6.17): frames are indexed by row, then column."""
    dimension_uid = derived_uid(slide.identity, "dimension-organization")
    organization = Dataset()
    organization.DimensionOrganizationUID = dimension_uid
    ds.DimensionOrganizationSequence = Sequence([organization])
    ds.DimensionIndexSequence = Sequence(
        [
            _dimension_index(dimension_uid, _ROW_POSITION_TAG),
            _dimension_index(dimension_uid, _COLUMN_POSITION_TAG),
        ]
    )


def _dimension_index(organization_uid: str, pointer: int) -> Dataset:
    item = Dataset()
    item.DimensionOrganizationUID = organization_uid
    item.DimensionIndexPointer = pointer
    item.FunctionalGroupPointer = _PLANE_POSITION_SLIDE_SEQUENCE_TAG
    return item


def specimen(ds: Dataset, slide: SlideDescription, geometry: InstanceGeometry) -> None:
    """Specimen (PS3.3 §C.7.6.22): the slide as container, its specimen by pseudonym."""
    identity = slide.identity
    ds.ContainerIdentifier = _pseudonym(
        "ContainerIdentifier", identity.container_pseudonym or identity.slide_id
    )
    ds.IssuerOfTheContainerIdentifierSequence = Sequence()
    ds.ContainerTypeCodeSequence = Sequence([_code("433466003", "SCT", "Microscope slide")])
    item = Dataset()
    item.SpecimenIdentifier = _pseudonym(
        "SpecimenIdentifier", identity.specimen_pseudonym or identity.slide_id
    )
    item.SpecimenUID = derived_uid(
        identity, "specimen", identity.specimen_pseudonym or identity.slide_id
    )
    item.IssuerOfTheSpecimenIdentifierSequence = Sequence()
    item.SpecimenPreparationSequence = Sequence()
    ds.SpecimenDescriptionSequence = Sequence([item])


def acquisition_context(ds: Dataset, slide: SlideDescription, geometry: InstanceGeometry) -> None:
    """Acquisition Context (PS3.3 §C.7.6.14): type 2, empty."""
    ds.AcquisitionContextSequence = Sequence()


def optical_path(ds: Dataset, slide: SlideDescription, geometry: InstanceGeometry) -> None:
    """Optical Path (PS3.3 §C.8.12.5): one brightfield path carrying the ICC profile."""
    ds.NumberOfOpticalPaths = 1
    optical = Dataset()
    optical.OpticalPathIdentifier = "0"
    optical.IlluminationTypeCodeSequence = Sequence(
        [_code("111744", "DCM", "Brightfield illumination")]
    )
    optical.IlluminationColorCodeSequence = Sequence([_code("414298005", "SCT", "Full Spectrum")])
    optical.ICCProfile = slide.icc_profile
    if slide.color_space:
        optical.ColorSpace = slide.color_space
    if slide.objective_power is not None:
        optical.ObjectiveLensPower = decimal_string(slide.objective_power)
    ds.OpticalPathSequence = Sequence([optical])


def decimal_string(value: float) -> str:
    """A Decimal String of at most 16 characters (PS3.5 §6.2)."""
    text = f"{value:.10g}"
    if len(text) > 16:
        text = f"{value:.9e}"
    return text


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    """A Code Sequence item (PS3.3 §8.8)."""
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def _pseudonym(keyword: str, value: str | None) -> str:
    return attribute_value(keyword, value or "", pseudonym=True)
