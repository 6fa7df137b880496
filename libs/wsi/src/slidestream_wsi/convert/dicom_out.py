"""DICOM VL Whole Slide Microscopy Image instances (PS3.3 §A.32.8), one per pyramid level plus a
thumbnail, written frame by frame.

The dataset in front of the pixel data is built with pydicom and written with ``dcmwrite``; the
encapsulated Pixel Data (PS3.5 §A.4) is then streamed item by item, and the offset table is
patched in place once every frame's size is known: a Basic Offset Table when the frames add up
to less than 4 GiB, else an Extended Offset Table (PS3.3 §C.7.6.3.1.8) with an empty BOT.
Uncompressed levels use Explicit VR Little Endian native pixel data.

Output is deterministic: UIDs come from the slide id (PS3.5 §B.2, UUID-derived ``2.25`` UIDs by
default), dates and times are the constants below (the slide's real acquisition time is
identifying and was removed by de-identification), and the ICC profile carried over is the
source's or a fixed sRGB profile.
"""

from __future__ import annotations

import io
import os
import struct
import uuid
from collections.abc import Sequence as FrameSequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np
import pydicom
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
BOT_LIMIT_BYTES = 2**32 - 1
"""A Basic Offset Table holds 32-bit offsets (PS3.5 §A.4): beyond, the Extended one is used."""
SLICE_THICKNESS_MM = 0.001
"""Imaged volume depth and slice thickness are unknown after conversion; DICOM wants a non-zero
value (dciodvfy rejects 0), and 1 µm is the nominal depth of field wsidicom assumes too."""

_TRANSFER_SYNTAX: dict[Compression, UID] = {
    "jpeg": JPEGBaseline8Bit,
    "jpeg2000": JPEG2000,
    "none": ExplicitVRLittleEndian,
}
# PS3.3 §C.7.6.1.1.5: Lossy Image Compression Method defined terms.
_LOSSY_METHOD: dict[Compression, str] = {"jpeg": "ISO_10918_1", "jpeg2000": "ISO_15444_1"}
RATIO_PLACEHOLDER = "1.0000000000000"
_RATIO_ELEMENT_HEAD = b"\x28\x00\x12\x21DS" + struct.pack("<H", 16)
_UID_NAMESPACE = uuid.UUID("6f1c1f1e-8c1a-5b7e-9d1e-5d6c1e7a0b42")
"""Namespace of our name-based UUIDs (a fixed random value; changing it changes every UID)."""
_ITEM = b"\xfe\xff\x00\xe0"
_ITEM_HEADER = struct.Struct("<4sI")
_SEQUENCE_DELIMITER = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"


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


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def _pseudonym(keyword: str, value: str | None) -> str:
    return attribute_value(keyword, value or "", pseudonym=True)


def build_dataset(slide: SlideDescription, geometry: InstanceGeometry) -> Dataset:
    identity = slide.identity
    sop_instance_uid = derived_uid(identity, "instance", geometry.name, slide.options_key)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = VLWholeSlideMicroscopyImageStorage
    meta.MediaStorageSOPInstanceUID = sop_instance_uid
    meta.TransferSyntaxUID = _TRANSFER_SYNTAX[geometry.compression]
    meta.ImplementationClassUID = derived_uid(DicomIdentity("implementation"), "slidestream")
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME

    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 192"
    # SOP Common, Patient, General Study, General Series, Frame of Reference, Equipment
    ds.SOPClassUID = VLWholeSlideMicroscopyImageStorage
    ds.SOPInstanceUID = sop_instance_uid
    ds.PatientName = _pseudonym("PatientName", identity.patient_pseudonym)
    ds.PatientID = _pseudonym("PatientID", identity.patient_pseudonym)
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = "slidestream de-identification"
    ds.StudyInstanceUID = derived_uid(
        identity, "study", *(["case", identity.case_pseudonym] if identity.case_pseudonym else [])
    )
    ds.StudyDate = ""
    ds.StudyTime = ""
    ds.ReferringPhysicianName = ""
    ds.StudyID = ""
    # SH, 16 characters (PS3.5 Table 6.2-1): the case pseudonym in its shortened form.
    ds.AccessionNumber = _pseudonym("AccessionNumber", identity.case_pseudonym)
    ds.Modality = "SM"
    ds.SeriesInstanceUID = derived_uid(identity, "series", slide.options_key)
    ds.SeriesNumber = 1
    ds.FrameOfReferenceUID = derived_uid(identity, "frame-of-reference")
    ds.PositionReferenceIndicator = "SLIDE_CORNER"
    ds.Manufacturer = MANUFACTURER
    ds.ManufacturerModelName = MODEL_NAME
    ds.DeviceSerialNumber = "0"
    ds.SoftwareVersions = SOFTWARE_VERSION
    # General Image / Whole Slide Microscopy Image (PS3.3 §C.8.12.4)
    image_type = [
        "DERIVED" if geometry.derived else "ORIGINAL",
        "PRIMARY",
        geometry.flavor,
        "RESAMPLED" if geometry.derived else "NONE",
    ]
    ds.ImageType = image_type
    ds.InstanceNumber = geometry.instance_number
    ds.ContentDate = CONTENT_DATE
    ds.ContentTime = CONTENT_TIME
    ds.AcquisitionDateTime = CONTENT_DATE + CONTENT_TIME
    ds.PyramidUID = derived_uid(identity, "pyramid", slide.options_key)
    ds.ContainerIdentifier = _pseudonym(
        "ContainerIdentifier", identity.container_pseudonym or identity.slide_id
    )
    ds.IssuerOfTheContainerIdentifierSequence = Sequence()
    ds.ContainerTypeCodeSequence = Sequence([_code("433466003", "SCT", "Microscope slide")])
    specimen = Dataset()
    specimen.SpecimenIdentifier = _pseudonym(
        "SpecimenIdentifier", identity.specimen_pseudonym or identity.slide_id
    )
    specimen.SpecimenUID = derived_uid(
        identity, "specimen", identity.specimen_pseudonym or identity.slide_id
    )
    specimen.IssuerOfTheSpecimenIdentifierSequence = Sequence()
    specimen.SpecimenPreparationSequence = Sequence()
    ds.SpecimenDescriptionSequence = Sequence([specimen])
    ds.VolumetricProperties = "VOLUME"
    ds.SpecimenLabelInImage = "NO"
    ds.BurnedInAnnotation = "NO"
    ds.FocusMethod = "AUTO"
    ds.ExtendedDepthOfField = "NO"
    lossy = slide.source_lossy or geometry.derived or geometry.compression != "none"
    ds.LossyImageCompression = "01" if lossy else "00"
    if lossy:
        # The ratio is known once the frames are written; DicomInstanceWriter patches this
        # fixed-width placeholder (PS3.5 §6.2: DS, at most 16 bytes).
        ds.LossyImageCompressionRatio = RATIO_PLACEHOLDER
        if geometry.compression in _LOSSY_METHOD:
            ds.LossyImageCompressionMethod = _LOSSY_METHOD[geometry.compression]
    ds.AcquisitionContextSequence = Sequence()
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = geometry.photometric
    ds.PlanarConfiguration = 0
    ds.Rows = geometry.tile_height
    ds.Columns = geometry.tile_width
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.NumberOfFrames = geometry.frame_count
    ds.TotalPixelMatrixColumns = geometry.width
    ds.TotalPixelMatrixRows = geometry.height
    ds.TotalPixelMatrixFocalPlanes = 1
    ds.NumberOfOpticalPaths = 1
    ds.DimensionOrganizationType = "TILED_FULL"
    dimension_uid = derived_uid(identity, "dimension-organization")
    organization = Dataset()
    organization.DimensionOrganizationUID = dimension_uid
    ds.DimensionOrganizationSequence = Sequence([organization])
    ds.DimensionIndexSequence = Sequence(
        [_dimension_index(dimension_uid, 0x0048021F), _dimension_index(dimension_uid, 0x0048021E)]
    )
    origin = Dataset()
    origin.XOffsetInSlideCoordinateSystem = 0.0
    origin.YOffsetInSlideCoordinateSystem = 0.0
    ds.TotalPixelMatrixOriginSequence = Sequence([origin])
    ds.ImageOrientationSlide = [0, -1, 0, -1, 0, 0]
    shared = Dataset()
    frame_type = Dataset()
    frame_type.FrameType = image_type
    shared.WholeSlideMicroscopyImageFrameTypeSequence = Sequence([frame_type])
    optical_ref = Dataset()
    optical_ref.OpticalPathIdentifier = "0"
    shared.OpticalPathIdentificationSequence = Sequence([optical_ref])
    if slide.mpp is not None:
        level0_w, level0_h = slide.level0_size
        mpp_x = slide.mpp[0] * geometry.downsample
        mpp_y = slide.mpp[1] * geometry.downsample
        measures = Dataset()
        # PS3.3 §10.7.1.3: Pixel Spacing is (row spacing, column spacing) in mm.
        measures.PixelSpacing = [_ds(mpp_y / 1000.0), _ds(mpp_x / 1000.0)]
        measures.SliceThickness = SLICE_THICKNESS_MM
        shared.PixelMeasuresSequence = Sequence([measures])
        ds.ImagedVolumeWidth = level0_w * slide.mpp[0] / 1000.0
        ds.ImagedVolumeHeight = level0_h * slide.mpp[1] / 1000.0
        ds.ImagedVolumeDepth = SLICE_THICKNESS_MM
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    # Optical Path (PS3.3 §C.8.12.5)
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
        optical.ObjectiveLensPower = _ds(slide.objective_power)
    ds.OpticalPathSequence = Sequence([optical])
    return ds


def _dimension_index(organization_uid: str, pointer: int) -> Dataset:
    item = Dataset()
    item.DimensionOrganizationUID = organization_uid
    item.DimensionIndexPointer = pointer
    # PS3.3 §C.8.12.4.1.x: column/row position in the total pixel matrix live in the Plane
    # Position (Slide) functional group.
    item.FunctionalGroupPointer = 0x0048021A
    return item


def _ds(value: float) -> str:
    """A Decimal String of at most 16 characters (PS3.5 §6.2)."""
    text = f"{value:.10g}"
    if len(text) > 16:
        text = f"{value:.9e}"
    return text


class DicomInstanceWriter:
    """Writes one instance: the dataset, then frames a tile row at a time (encapsulated or
    native).

    The dataset is serialised in memory; the frames go to the file unbuffered, with one
    ``writev`` per row from the caller's buffers (item headers in between), so that a copied
    tile is copied once, into the kernel."""

    def __init__(self, path: Path, dataset: Dataset, frames_size_bound: int) -> None:
        self.path = path
        self._frame_count = int(dataset.NumberOfFrames)
        ts = UID(str(dataset.file_meta.TransferSyntaxUID))
        self._encapsulated = ts.is_compressed
        self._frame_bytes = int(dataset.Rows) * int(dataset.Columns) * 3
        self._lengths: list[int] = []
        self._use_eot = self._encapsulated and frames_size_bound > BOT_LIMIT_BYTES
        header = io.BytesIO()
        pydicom.dcmwrite(header, dataset, enforce_file_format=True)
        head = header.getvalue()
        self._ratio_at: int | None = None
        if "LossyImageCompressionRatio" in dataset:
            found = head.find(_RATIO_ELEMENT_HEAD)
            if found < 0:
                raise RuntimeError("compression ratio placeholder not found in the header")
            self._ratio_at = found + len(_RATIO_ELEMENT_HEAD)
        count = self._frame_count
        parts = [head]
        if not self._encapsulated:
            total = count * self._frame_bytes
            self._native_padding = total % 2
            parts.append(b"\xe0\x7f\x10\x00OB\x00\x00" + struct.pack("<I", total + total % 2))
        else:
            if self._use_eot:
                self._eot_at = len(head) + 12
                table = b"\x00" * (8 * count)
                for tag in (b"\xe0\x7f\x01\x00", b"\xe0\x7f\x02\x00"):
                    parts.append(tag + b"OV\x00\x00" + struct.pack("<I", len(table)) + table)
            parts.append(b"\xe0\x7f\x10\x00OB\x00\x00\xff\xff\xff\xff")
            bot = b"" if self._use_eot else b"\x00" * (4 * count)
            self._bot_at = sum(len(part) for part in parts) + 8
            parts.append(_ITEM + struct.pack("<I", len(bot)) + bot)
        self._file = path.open("w+b", buffering=0)
        self._fd = self._file.fileno()
        _write_all(self._fd, parts)

    def add_frame(self, data: bytes) -> None:
        self.add_frames((data,))

    def add_frames(self, frames: FrameSequence[bytes | memoryview]) -> None:
        """Append frames in order, in one ``writev`` (a tile row at a time keeps the cost per
        frame to building its item header)."""
        if len(self._lengths) + len(frames) > self._frame_count:
            raise RuntimeError("more frames than the instance declares")
        if not self._encapsulated:
            if any(len(data) != self._frame_bytes for data in frames):
                raise RuntimeError("native frame of the wrong size")
            _write_all(self._fd, frames)
            self._lengths.extend(self._frame_bytes for _ in frames)
            return
        parts: list[bytes | memoryview] = []
        for data in frames:
            size = len(data)
            padded = size + size % 2
            parts.append(_ITEM_HEADER.pack(_ITEM, padded))
            parts.append(data)
            if padded != size:
                parts.append(b"\x00")
            self._lengths.append(padded)
        _write_all(self._fd, parts)

    def close(self) -> None:
        if len(self._lengths) != self._frame_count:
            self._file.close()
            raise RuntimeError("fewer frames than the instance declares")
        if self._ratio_at is not None:
            ratio = self._frame_count * self._frame_bytes / max(1, sum(self._lengths))
            os.pwrite(self._fd, f"{ratio:.2f}".ljust(16).encode("ascii"), self._ratio_at)
        if not self._encapsulated:
            if self._native_padding:
                _write_all(self._fd, [b"\x00"])
            self._file.close()
            return
        _write_all(self._fd, [_SEQUENCE_DELIMITER])
        # PS3.5 §A.4: each offset is that of the frame's item tag from the first item after
        # the table; an item is its 8-byte header plus the (even) frame length.
        lengths = np.asarray(self._lengths, dtype=np.uint64)
        ends = np.cumsum(lengths + _ITEM_HEADER.size, dtype=np.uint64)
        offsets = np.concatenate([np.zeros(1, np.uint64), ends[:-1]])
        if self._use_eot:
            os.pwrite(self._fd, offsets.astype("<u8").tobytes(), self._eot_at)
            os.pwrite(
                self._fd, lengths.astype("<u8").tobytes(), self._eot_at + 8 * len(offsets) + 12
            )
        else:
            if int(ends[-1]) > BOT_LIMIT_BYTES:
                self._file.close()
                raise RuntimeError("frames exceed the Basic Offset Table's 32-bit offsets")
            os.pwrite(self._fd, offsets.astype("<u4").tobytes(), self._bot_at)
        self._file.close()

    def abort(self) -> None:
        self._file.close()

    def __enter__(self) -> DicomInstanceWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


_IOV_MAX = os.sysconf("SC_IOV_MAX") if hasattr(os, "sysconf") else 1024


def _write_all(fd: int, parts: FrameSequence[bytes | memoryview]) -> None:
    """``writev`` the parts at the file's position, at most IOV_MAX at a time; a short write
    (allowed by POSIX) is finished part by part."""
    for start in range(0, len(parts), _IOV_MAX):
        batch = parts[start : start + _IOV_MAX]
        written = os.writev(fd, batch)
        expected = sum(len(part) for part in batch)
        if written == expected:
            continue
        for part in batch:
            size = len(part)
            if written >= size:
                written -= size
                continue
            rest = memoryview(part)[written:]
            written = 0
            while len(rest):
                rest = rest[os.write(fd, rest) :]
