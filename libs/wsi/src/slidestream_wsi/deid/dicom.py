"""De-identification of DICOM WSI instances (PS3.15 Annex E Basic Profile, plus stricter rules).

The dataset in front of the Pixel Data element is de-identified and written anew; the Pixel
Data element itself (every frame) is copied byte for byte from the source, streamed, so the
tiles stay identical. Anything after the Pixel Data element (Data Set Trailing Padding, Digital
Signatures: both ``X`` in Table E.1-1) is dropped. LABEL and OVERVIEW instances are not
written at all.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.uid import UID, JPEGBaseline8Bit

from slidestream_wsi.deid.audit import AuditRecorder
from slidestream_wsi.deid.dicom_profile import (
    BASIC_PROFILE,
    CLASS_UID_KEYWORDS,
    CODE_BASIC_PROFILE,
    CODE_MODIFIED_DATES,
    DICOM_ROOT_UID,
    DUMMY_DATE,
    DUMMY_DATETIME,
    DUMMY_TEXT,
    DUMMY_TIME,
)
from slidestream_wsi.deid.label import pseudonym_label, pseudonym_label_jpeg
from slidestream_wsi.deid.policy import DeidPolicy, DicomDatePolicy
from slidestream_wsi.dicom.pixeldata import DicomHeader, read_dicom_header
from slidestream_wsi.dicom.validate import ASSOCIATED_IMAGE_FLAVORS, image_flavor
from slidestream_wsi.dicom.values import attribute_value, dummy_value
from slidestream_wsi.errors import DeidentificationError
from slidestream_wsi.limits import SlideLimits
from slidestream_wsi.pseudonyms import date_shift_days, remap_uid

COPY_CHUNK_BYTES = 8 * 1024 * 1024
# PS3.15 E.3: the De-identification Method text and codes that say what was done.
DEID_METHOD_BASIC = "slidestream-wsi PS3.15 E.1-1 Basic Profile"
DEID_METHOD_DATES = "Retain Longitudinal Temporal Information Modified Dates Option"
# Free-text value representations (PS3.5 §6.2): removed wherever the table does not decide.
_FREE_TEXT_VRS = frozenset({"LT", "ST", "UT"})
# Groups of repeating overlay (60xx) and curve (50xx) data: Table E.1-1 removes them.
_REPEATING_GROUP_MASK = 0xFF00
_OVERLAY_GROUP = 0x6000
_CURVE_GROUP = 0x5000
# File meta elements that carry sender identity (PS3.10 §7.1): removed.
_FILE_META_REMOVED = (
    (0x0002, 0x0016),  # Source Application Entity Title
    (0x0002, 0x0017),  # Sending Application Entity Title
    (0x0002, 0x0018),  # Receiving Application Entity Title
    (0x0002, 0x0100),  # Private Information Creator UID
    (0x0002, 0x0102),  # Private Information
)


@dataclass(frozen=True, slots=True)
class DicomInstanceOutcome:
    written: bool
    """False for LABEL/OVERVIEW instances, which are dropped."""
    flavor: str
    bytes_rewritten: int
    output_bytes: int
    sop_instance_uid: str | None


class _Context:
    def __init__(self, policy: DeidPolicy, audit: AuditRecorder, shift_days: int) -> None:
        self.policy = policy
        self.audit = audit
        self.shift_days = shift_days

    @property
    def shifting(self) -> bool:
        return self.policy.dicom_dates is DicomDatePolicy.SHIFT

    def uid(self, value: str) -> str:
        return remap_uid(self.policy.key, self.policy.tenant, value)


def deidentify_dicom_instance(
    source: Path, destination: Path, policy: DeidPolicy, audit: AuditRecorder, limits: SlideLimits
) -> DicomInstanceOutcome:
    """Write a de-identified copy of one instance; LABEL/OVERVIEW instances are dropped."""
    header = read_dicom_header(source, limits)
    ds = header.dataset
    flavor = image_flavor(ds.get("ImageType", []))
    if flavor in ASSOCIATED_IMAGE_FLAVORS - {"THUMBNAIL"}:
        audit.removed_image(f"dicom.{flavor.lower()}")
        _record_all_values(ds, audit)
        return DicomInstanceOutcome(False, flavor, 0, 0, None)
    subject = str(ds.get("PatientID", "") or ds.get("StudyInstanceUID", "") or "")
    shift = date_shift_days(policy.key, policy.tenant, subject)
    ctx = _Context(policy, audit, shift)
    _deidentify_dataset(ds, ctx)
    _mark_deidentified(ds, ctx)
    _deidentify_file_meta(ds.file_meta, ds, ctx)
    return _write(source, destination, header, ds, flavor)


def _write(
    source: Path, destination: Path, header: DicomHeader, ds: Dataset, flavor: str
) -> DicomInstanceOutcome:
    layout = header.pixel_data
    with destination.open("wb") as out:
        pydicom.dcmwrite(out, ds, enforce_file_format=True)
        header_bytes = out.tell()
        with source.open("rb") as src:
            src.seek(layout.element_offset)
            remaining = layout.element_end - layout.element_offset
            while remaining:
                chunk = src.read(min(COPY_CHUNK_BYTES, remaining))
                if not chunk:
                    raise DeidentificationError("source shrank while copying pixel data")
                out.write(chunk)
                remaining -= len(chunk)
        total = out.tell()
    return DicomInstanceOutcome(True, flavor, header_bytes, total, str(ds.SOPInstanceUID))


def _record_all_values(ds: Dataset, audit: AuditRecorder) -> None:
    for elem in ds.iterall():
        if elem.VR in ("SQ", "OB", "OW", "OF", "OD", "OL", "OV", "UN"):
            continue
        for value in _values(elem.value):
            audit.removed_value(value)


def _values(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, MultiValue | list | tuple):
        return [str(v) for v in value if v is not None and str(v)]
    text = str(value)
    return [text] if text else []


def _element_name(elem: DataElement) -> str:
    tag = BaseTag(elem.tag)
    if tag.is_private:
        return f"dicom.private({tag.group:04X},{tag.element:04X})"
    return f"dicom.{elem.keyword or f'({tag.group:04X},{tag.element:04X})'}"


def _deidentify_dataset(ds: Dataset, ctx: _Context) -> None:
    for elem in list(ds):
        tag = BaseTag(elem.tag)
        group = tag.group
        if tag.is_private or group & _REPEATING_GROUP_MASK in (_OVERLAY_GROUP, _CURVE_GROUP):
            _remove(ds, elem, ctx)
            continue
        if tag == 0x7FE00010:
            continue
        action = BASIC_PROFILE.get(elem.keyword)
        if elem.VR == "SQ":
            if action == "X" or action == "D":
                _remove(ds, elem, ctx)
            elif action == "Z":
                _record(elem, ctx)
                elem.value = Sequence()
            else:
                for item in elem.value or []:
                    _deidentify_dataset(item, ctx)
            continue
        if action == "K":
            continue
        if action is not None:
            _apply(ds, elem, action, ctx)
            continue
        # Not in the table: rules stricter than the profile, by value representation.
        if elem.VR == "UI":
            _remap_uids(elem, ctx)
        elif elem.VR == "PN":
            _apply(ds, elem, "Z", ctx)
        elif elem.VR in _FREE_TEXT_VRS:
            _remove(ds, elem, ctx)
        elif elem.VR in ("DA", "DT"):
            _apply(ds, elem, "Z", ctx)


def _record(elem: DataElement, ctx: _Context) -> None:
    ctx.audit.removed_field(_element_name(elem))
    if elem.VR == "SQ":
        for item in elem.value or []:
            _record_all_values(item, ctx.audit)
    elif elem.VR not in ("OB", "OW", "UN"):
        for value in _values(elem.value):
            ctx.audit.removed_value(value)


def _remove(ds: Dataset, elem: DataElement, ctx: _Context) -> None:
    _record(elem, ctx)
    del ds[elem.tag]


def _apply(ds: Dataset, elem: DataElement, action: str, ctx: _Context) -> None:
    if ctx.shifting and elem.VR == "TM":
        return  # PS3.15 E.3.6: times are kept under the modified-dates option
    if ctx.shifting and elem.VR in ("DA", "DT") and elem.keyword != "PatientBirthDate":
        # PS3.15 E.3.6: dates are kept, moved by the subject's keyed shift.
        if elem.value:
            _record(elem, ctx)
            elem.value = _shift(elem.value, elem.VR, ctx.shift_days)
        return
    if action == "X":
        _remove(ds, elem, ctx)
        return
    _record(elem, ctx)
    if action == "Z":
        keeps_pseudonym = elem.keyword in ("PatientName", "PatientID")
        elem.value = _pseudonym(elem.keyword, ctx) if keeps_pseudonym else ""
    elif action == "D":
        elem.value = _dummy(elem, ctx)
    elif action == "U":
        _remap_uids(elem, ctx)


def _dummy(elem: DataElement, ctx: _Context) -> str:
    if elem.VR == "DA":
        return DUMMY_DATE
    if elem.VR == "TM":
        return DUMMY_TIME
    if elem.VR == "DT":
        return DUMMY_DATETIME
    if elem.keyword in ("ContainerIdentifier", "SpecimenIdentifier", "PersonName"):
        return _pseudonym(elem.keyword, ctx)
    return dummy_value(elem.keyword, DUMMY_TEXT) if elem.keyword else DUMMY_TEXT


def _pseudonym(keyword: str, ctx: _Context) -> str:
    return attribute_value(keyword, ctx.policy.pseudonym, pseudonym=True)


def _shift(value: object, vr: str, days: int) -> str | list[str]:
    shifted = [_shift_one(v, vr, days) for v in _values(value)]
    return shifted[0] if len(shifted) == 1 else shifted


def _shift_one(text: str, vr: str, days: int) -> str:
    text = text.strip()
    try:
        day = dt.datetime.strptime(text[:8], "%Y%m%d").date()
    except ValueError:
        return DUMMY_DATE if vr == "DA" else DUMMY_DATETIME
    moved = (day + dt.timedelta(days=days)).strftime("%Y%m%d")
    return moved if vr == "DA" else moved + text[8:]


def _remap_uids(elem: DataElement, ctx: _Context) -> None:
    if elem.keyword in CLASS_UID_KEYWORDS:
        return
    values = _values(elem.value)
    if not values or all(v.startswith(DICOM_ROOT_UID) for v in values):
        return
    ctx.audit.removed_field(_element_name(elem))
    for value in values:
        ctx.audit.removed_value(value)
    mapped = [v if v.startswith(DICOM_ROOT_UID) else ctx.uid(v) for v in values]
    elem.value = mapped[0] if len(mapped) == 1 else mapped


def _code_item(code: tuple[str, str]) -> Dataset:
    item = Dataset()
    item.CodeValue = code[0]
    item.CodingSchemeDesignator = "DCM"
    item.CodeMeaning = code[1]
    return item


def _mark_deidentified(ds: Dataset, ctx: _Context) -> None:
    """PS3.15 E.1.1: Patient Identity Removed, De-identification Method (and its codes)."""
    codes: list[tuple[str, str]] = [CODE_BASIC_PROFILE]
    methods = [DEID_METHOD_BASIC]
    if ctx.shifting:
        codes.append(CODE_MODIFIED_DATES)
        methods.append(DEID_METHOD_DATES)
    ds.PatientIdentityRemoved = "YES"
    # LO, VM 1-n: one value per method, each within the 64 characters of LO (PS3.5 §6.2).
    ds.DeidentificationMethod = methods
    ds.DeidentificationMethodCodeSequence = Sequence([_code_item(c) for c in codes])
    # PS3.3 C.7.6.1.1.5: whether dates were kept, modified or removed.
    ds.LongitudinalTemporalInformationModified = "MODIFIED" if ctx.shifting else "REMOVED"
    ds.PatientName = _pseudonym("PatientName", ctx)
    ds.PatientID = _pseudonym("PatientID", ctx)


def _deidentify_file_meta(meta: FileMetaDataset, ds: Dataset, ctx: _Context) -> None:
    for tag in _FILE_META_REMOVED:
        if tag in meta:
            ctx.audit.removed_field(_element_name(meta[tag]))
            for value in _values(meta[tag].value):
                ctx.audit.removed_value(value)
            del meta[tag]
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.ImplementationClassUID = pydicom.uid.PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = "SLIDESTREAM1"


LABEL_PIXEL_SPACING_MM = 0.08
"""Pixel spacing written on a generated label (a 320 px label is then 25.6 mm wide, about the
width of a slide label); the generated image has no physical origin, so this is nominal."""
_LABEL_UID_ROLE = "slidestream-pseudonym-label"
# Attributes of the reference that describe its own pixels or frames, not the series.
_REFERENCE_ONLY_KEYWORDS = (
    "PerFrameFunctionalGroupsSequence",
    "NumberOfFocalPlanes",
    "DimensionIndexSequence",
    "ConcatenationUID",
    "SOPInstanceUIDOfConcatenationSource",
    "InConcatenationNumber",
    "InConcatenationTotalNumber",
    "IconImageSequence",
)


def write_pseudonym_label_instance(
    reference: Path, destination: Path, policy: DeidPolicy, limits: SlideLimits
) -> str:
    """Write a LABEL instance showing only the pseudonym into the series of ``reference``.

    ``reference`` is an already de-identified instance of the series: its patient, study,
    series, frame-of-reference and specimen attributes are copied, so the label belongs to the
    same slide (PS3.3 C.8.12.4: a VL Whole Slide Microscopy LABEL image). The label is one
    baseline JPEG frame (YBR_FULL_422), and its SOP Instance UID is keyed on the series, so
    repeating the de-identification gives the same file. Returns the SOP Instance UID.
    """
    ds = read_dicom_header(reference, limits).dataset
    if str(ds.get("PatientIdentityRemoved", "")) != "YES":
        raise DeidentificationError("the label reference is not a de-identified instance")
    image = pseudonym_label(policy.pseudonym)
    height, width = int(image.shape[0]), int(image.shape[1])
    for keyword in _REFERENCE_ONLY_KEYWORDS:
        if keyword in ds:
            del ds[keyword]
    uid = UID(remap_uid(policy.key, policy.tenant, f"{_LABEL_UID_ROLE}/{ds.SeriesInstanceUID}"))
    ds.SOPInstanceUID = uid
    ds.file_meta.MediaStorageSOPInstanceUID = uid
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    # PS3.3 C.8.12.4.1.1: DERIVED, the pixels are generated, not acquired.
    ds.ImageType = ["DERIVED", "PRIMARY", "LABEL", "NONE"]
    ds.InstanceNumber = int(ds.get("InstanceNumber", 0) or 0) + 1000
    _describe_label_pixels(ds, width, height)
    ds.SharedFunctionalGroupsSequence = _label_functional_groups(ds)
    ds.PixelData = encapsulate([pseudonym_label_jpeg(image)])
    ds["PixelData"].VR = "OB"
    pydicom.dcmwrite(destination, ds, enforce_file_format=True)
    return uid


def _describe_label_pixels(ds: Dataset, width: int, height: int) -> None:
    """Image Pixel and Whole Slide Microscopy Image attributes of a one-frame RGB JPEG label
    (PS3.3 C.7.6.3, C.8.12.4)."""
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "YBR_FULL_422"
    ds.PlanarConfiguration = 0
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.Rows = height
    ds.Columns = width
    ds.NumberOfFrames = 1
    ds.TotalPixelMatrixRows = height
    ds.TotalPixelMatrixColumns = width
    ds.TotalPixelMatrixFocalPlanes = 1
    ds.DimensionOrganizationType = "TILED_FULL"
    ds.ImagedVolumeWidth = width * LABEL_PIXEL_SPACING_MM
    ds.ImagedVolumeHeight = height * LABEL_PIXEL_SPACING_MM
    ds.ImagedVolumeDepth = 0.0
    # The label shows a pseudonym only: nothing that identifies the patient is burned in.
    ds.BurnedInAnnotation = "NO"
    ds.SpecimenLabelInImage = "YES"
    ds.LossyImageCompression = "01"
    ds.LossyImageCompressionMethod = "ISO_10918_1"


def _label_functional_groups(ds: Dataset) -> Sequence:
    """The label's Shared Functional Groups: its nominal pixel spacing and its frame type."""
    shared = Dataset()
    measures = Dataset()
    measures.PixelSpacing = [LABEL_PIXEL_SPACING_MM, LABEL_PIXEL_SPACING_MM]
    measures.SliceThickness = 0
    shared.PixelMeasuresSequence = Sequence([measures])
    frame_type = Dataset()
    frame_type.FrameType = ds.ImageType
    shared.WholeSlideMicroscopyImageFrameTypeSequence = Sequence([frame_type])
    return Sequence([shared])
