"""Sample whole-slide images with fake PHI planted in every place a vendor puts identity.

Used by the tests (every de-identification claim is checked against these), by ``make demo``
(sample slides a newcomer can push through the pipeline) and by the benchmarks. The identities
are invented; nothing here comes from a real patient.

Every layout is small (2048 x 1536 level 0, 256 px JPEG tiles, a few MB) and carries the planted
tokens of :data:`TOKENS` in tags, descriptions, XML, DICOM attributes, private tags, and drawn
into its label and macro images. Tiles are noisy so that JPEG data dominates the file size, as
in real slides.
"""

from __future__ import annotations

import base64
import functools
import io
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pydicom
import tifffile
from PIL import Image, ImageDraw, ImageFont
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.uid import UID, JPEGBaseline8Bit, generate_uid

LEVEL0_WIDTH_PX = 2048
LEVEL0_HEIGHT_PX = 1536
TILE_PX = 256

# Fake PHI. Each token is unique enough that a byte-scan hit is never a coincidence.
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

# The tokens drawn into label and macro images (found by eye, not by a byte scan).
LABEL_TOKENS = ("patient_name", "accession", "barcode")


@dataclass(frozen=True)
class PlantedSlide:
    layout: str
    path: Path
    """The slide file, or the folder of a DICOM series."""
    files: tuple[Path, ...]
    tokens: tuple[str, ...] = field(default_factory=lambda: tuple(TOKENS.values()))
    has_label: bool = True


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def tissue(width: int, height: int, seed: int = 0) -> npt.NDArray[np.uint8]:
    """A pink, noisy image (noise keeps the JPEG tiles large, as real tissue does)."""
    rng = _rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = 180 + 40 * np.sin(xx / 97.0) * np.cos(yy / 73.0)
    noise = rng.integers(-90, 90, size=(height, width, 3))
    rgb = np.stack([base + 30, base - 40, base + 10], axis=-1) + noise
    return np.clip(rgb, 0, 255).astype(np.uint8)


def text_image(width: int, height: int, lines: list[str]) -> npt.NDArray[np.uint8]:
    """A label-like image with text drawn on it (Pillow ImageDraw)."""
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=16)
    for index, line in enumerate(lines):
        draw.text((8, 8 + 22 * index), line, fill="black", font=font)
    return np.array(image, dtype=np.uint8)


def label_image() -> npt.NDArray[np.uint8]:
    return text_image(300, 100, [TOKENS[k] for k in LABEL_TOKENS])


def macro_image() -> npt.NDArray[np.uint8]:
    image = text_image(360, 120, [TOKENS[k] for k in LABEL_TOKENS])
    image[:, 280:] = 200
    return image


def levels() -> list[npt.NDArray[np.uint8]]:
    level0 = tissue(LEVEL0_WIDTH_PX, LEVEL0_HEIGHT_PX)
    return [level0, level0[::2, ::2].copy(), level0[::4, ::4].copy()]


_EXIF_PLACEHOLDER_TAG = 34666


def _common_tags() -> list[tuple[int, int, int, object, bool]]:
    """Baseline tags that carry identity (TIFF 6.0 §8), XMP (700) and IPTC (33723)."""
    xmp = f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><dc:creator>{TOKENS["xmp"]}</dc:creator>'
    xmp += "</x:xmpmeta>"
    iptc = b"\x1c\x02\x50" + struct.pack(">H", len(TOKENS["iptc"])) + TOKENS["iptc"].encode()
    return [
        (269, 2, 0, TOKENS["filename"], True),  # DocumentName
        (315, 2, 0, TOKENS["operator"], True),  # Artist
        (316, 2, 0, TOKENS["hostname"], True),  # HostComputer
        (33432, 2, 0, TOKENS["copyright"], True),  # Copyright
        (700, 1, len(xmp), xmp.encode(), True),  # XMP
        (33723, 7, len(iptc), iptc, True),  # IPTC
        # tifffile refuses to write tag 34665; add_exif_ifd() renames this placeholder to the
        # EXIF IFD pointer (the entry order stays ascending) and points it at an EXIF IFD.
        (_EXIF_PLACEHOLDER_TAG, 4, 1, 0, True),
    ]


def add_exif_ifd(path: Path) -> None:
    """Append an EXIF IFD (DateTimeOriginal, BodySerialNumber, UserComment) and point to it."""
    with tifffile.TiffFile(path) as tif:
        tag = tif.pages.first.tags[_EXIF_PLACEHOLDER_TAG]
        entry_at = tag.offset
        pointer_at = tag.valueoffset
        byteorder = tif.byteorder
    comment = b"ASCII\x00\x00\x00" + TOKENS["exif"].encode()
    date = b"1987:11:23 04:05:06\x00"
    serial = TOKENS["serial"].encode() + b"\x00"
    with path.open("r+b") as fh:
        fh.seek(0, 2)
        start = fh.tell() + (fh.tell() % 2)
        entries = [(0x9003, 2, date), (0x9286, 7, comment), (0xA431, 2, serial)]
        values_at = start + 2 + 12 * len(entries) + 4
        block = struct.pack(byteorder + "H", len(entries))
        values = b""
        for code, ftype, raw in entries:
            block += struct.pack(byteorder + "HHII", code, ftype, len(raw), values_at + len(values))
            values += raw + (b"\x00" if len(raw) % 2 else b"")
        block += struct.pack(byteorder + "I", 0)
        fh.seek(start)
        fh.write(block + values)
        fh.seek(pointer_at)
        fh.write(struct.pack(byteorder + "I", start))
        fh.seek(entry_at)
        fh.write(struct.pack(byteorder + "H", 34665))


def _write_levels(
    tif: tifffile.TiffWriter,
    images: list[npt.NDArray[np.uint8]],
    first_description: str,
    first_extratags: list[tuple[int, int, int, object, bool]],
    software: str,
    level_description: str | None = None,
) -> None:
    for index, image in enumerate(images):
        tif.write(
            image,
            tile=(TILE_PX, TILE_PX),
            compression="jpeg",
            compressionargs={"level": 95},
            photometric="rgb",
            description=first_description if index == 0 else level_description,
            subfiletype=0 if index == 0 else 1,
            software=software,
            datetime="1987:11:23 04:05:06",
            metadata=None,
            extratags=first_extratags if index == 0 else [],
        )


def write_aperio_label_and_macro(tif: tifffile.TiffWriter) -> None:
    """Append Aperio's label and macro pages (SVS layout: after the pyramid), text drawn in."""
    tif.write(
        label_image(),
        compression="lzw",
        subfiletype=1,
        description="Aperio Image Library v12.0.15\nlabel 300x100",
        metadata=None,
    )
    tif.write(
        macro_image(),
        compression="jpeg",
        photometric="rgb",
        subfiletype=9,
        description="Aperio Image Library v12.0.15\nmacro 360x120",
        metadata=None,
    )


def make_svs(directory: Path) -> PlantedSlide:
    path = directory / "planted.svs"
    lv = levels()
    header = (
        "Aperio Image Library v12.0.15\r\n"
        f"{LEVEL0_WIDTH_PX}x{LEVEL0_HEIGHT_PX} [0,0 {LEVEL0_WIDTH_PX}x{LEVEL0_HEIGHT_PX}] "
        "(256x256) JPEG/RGB Q=90"
    )
    pairs = [
        "AppMag = 20",
        "MPP = 0.4990",
        "StripeWidth = 2040",
        f"Filename = {TOKENS['filename']}",
        "Date = 11/23/87",
        "Time = 04:05:06",
        f"User = {TOKENS['operator']}",
        f"ScanScope ID = {TOKENS['serial']}",
        f"Barcode = {TOKENS['barcode']}",
        f"Title = {TOKENS['free_text']}",
        f"Comment {TOKENS['patient_name']}",
    ]
    description = "|".join([header, *pairs])
    with tifffile.TiffWriter(path) as tif:
        tif.write(
            lv[0],
            tile=(TILE_PX, TILE_PX),
            compression="jpeg",
            compressionargs={"level": 95},
            photometric="rgb",
            description=description,
            software=TOKENS["hostname"],
            datetime="1987:11:23 04:05:06",
            metadata=None,
            extratags=_common_tags(),
        )
        thumb = lv[2][::2, ::2]
        tif.write(
            thumb,
            compression="jpeg",
            photometric="rgb",
            description=f"Aperio Image Library v12.0.15\n{2048}x{1536} -> 256x192 - |{pairs[3]}",
            metadata=None,
        )
        for image in lv[1:]:
            tif.write(
                image,
                tile=(TILE_PX, TILE_PX),
                compression="jpeg",
                compressionargs={"level": 95},
                photometric="rgb",
                description=description,
                metadata=None,
            )
        write_aperio_label_and_macro(tif)
    add_exif_ifd(path)
    return PlantedSlide("svs", path, (path,))


def make_generic_tiff(directory: Path) -> PlantedSlide:
    path = directory / "planted.tiff"
    lv = levels()
    with tifffile.TiffWriter(path) as tif:
        _write_levels(
            tif, lv, TOKENS["free_text"], _common_tags(), f"ScanSoft on {TOKENS['hostname']}"
        )
        tif.write(
            label_image(), compression="lzw", subfiletype=1, description="label", metadata=None
        )
        tif.write(
            macro_image(),
            compression="jpeg",
            photometric="rgb",
            subfiletype=1,
            description="macro",
            metadata=None,
        )
    add_exif_ifd(path)
    return PlantedSlide("generic_tiff", path, (path,))


def _ome_xml() -> str:
    ns = "http://www.openmicroscopy.org/Schemas/OME/2016-06"
    first, last = TOKENS["experimenter"].split(" ")

    def image(index: int, name: str, width: int, height: int, ifd: int) -> str:
        return (
            f'<Image ID="Image:{index}" Name="{name}">'
            f"<AcquisitionDate>1987-11-23T04:05:06</AcquisitionDate>"
            f'<ExperimenterRef ID="Experimenter:0"/>'
            f"<Description>{TOKENS['free_text']}</Description>"
            f'<InstrumentRef ID="Instrument:0"/>'
            f'<Pixels ID="Pixels:{index}" DimensionOrder="XYCZT" Type="uint8" SizeX="{width}" '
            f'SizeY="{height}" SizeC="3" SizeZ="1" SizeT="1" Interleaved="true" '
            f'PhysicalSizeX="0.25" PhysicalSizeY="0.25">'
            f'<Channel ID="Channel:{index}:0" SamplesPerPixel="3"/>'
            f'<TiffData IFD="{ifd}" PlaneCount="1"/>'
            f"</Pixels>"
            f'<AnnotationRef ID="Annotation:0"/>'
            f"</Image>"
        )

    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<OME xmlns="{ns}" Creator="synthetic">'
        f'<Experimenter ID="Experimenter:0" FirstName="{first}" LastName="{last}" '
        f'Email="{TOKENS["operator"].replace(" ", ".")}@example.org" '
        f'Institution="{TOKENS["institution"]}"/>'
        f'<Instrument ID="Instrument:0"><Microscope SerialNumber="{TOKENS["serial"]}"/>'
        f'<Objective ID="Objective:0" NominalMagnification="20"/></Instrument>'
        + image(0, TOKENS["filename"], LEVEL0_WIDTH_PX, LEVEL0_HEIGHT_PX, 0)
        + image(1, "label", 300, 100, 1)
        + image(2, "macro", 360, 120, 2)
        + "<StructuredAnnotations>"
        f'<CommentAnnotation ID="Annotation:0"><Value>{TOKENS["accession"]}</Value>'
        "</CommentAnnotation></StructuredAnnotations>"
        "</OME>"
    )


def make_ome_tiff(directory: Path) -> PlantedSlide:
    path = directory / "planted.ome.tiff"
    lv = levels()
    with tifffile.TiffWriter(path) as tif:
        tif.write(
            lv[0],
            tile=(TILE_PX, TILE_PX),
            compression="jpeg",
            compressionargs={"level": 95},
            photometric="rgb",
            description=_ome_xml(),
            subifds=len(lv) - 1,
            software=TOKENS["hostname"],
            datetime="1987:11:23 04:05:06",
            metadata=None,
            extratags=_common_tags()[:6],
        )
        for image in lv[1:]:
            tif.write(
                image,
                tile=(TILE_PX, TILE_PX),
                compression="jpeg",
                compressionargs={"level": 95},
                photometric="rgb",
                subfiletype=1,
                metadata=None,
            )
        tif.write(label_image(), compression="lzw", metadata=None)
        tif.write(macro_image(), compression="jpeg", photometric="rgb", metadata=None)
    return PlantedSlide("ome_tiff", path, (path,))


def _jpeg_with_restarts(
    image: npt.NDArray[np.uint8], interval_mcus: int
) -> tuple[bytes, list[int]]:
    """A JPEG with restart markers every ``interval_mcus`` MCUs, and each interval's start."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(
        buffer, "JPEG", quality=90, subsampling=2, restart_marker_blocks=interval_mcus
    )
    data = buffer.getvalue()
    sos = data.index(b"\xff\xda")
    (sos_length,) = struct.unpack(">H", data[sos + 2 : sos + 4])
    starts = [sos + 2 + sos_length]
    position = starts[0]
    while True:
        position = data.find(b"\xff", position)
        if position < 0 or position + 1 >= len(data):
            break
        marker = data[position + 1]
        if 0xD0 <= marker <= 0xD7:
            starts.append(position + 2)
        position += 2
    return data, starts


NDPI_LEVEL0_MPP_UM = 0.4536
"""Level-0 spacing of the NDPI sample: a 20x Hamamatsu scan."""


def make_ndpi(directory: Path) -> PlantedSlide:
    """An NDPI-like file: levels are single JPEG strips with restart markers and McuStarts."""
    path = directory / "planted_ndpi.tiff"
    lv = levels()

    def ndpi_tags(magnification: float, extra: bool) -> list[tuple[int, int, int, object, bool]]:
        tags: list[tuple[int, int, int, object, bool]] = [
            (65420, 4, 1, 1, True),  # FileFormat
            (65421, 11, 1, magnification, True),  # Magnification
            (65422, 9, 1, 0, True),
            (65423, 9, 1, 0, True),
            (65424, 9, 1, 0, True),
        ]
        if extra:
            tags += [
                (65427, 2, 0, TOKENS["barcode"], True),  # SlideLabel
                (65442, 2, 0, TOKENS["serial"], True),  # ScannerSerialNumber
                (
                    65449,
                    2,
                    0,
                    f"Reference={TOKENS['accession']}\r\nUser={TOKENS['operator']}",
                    True,
                ),  # Comments / property map
                (65428, 2, 0, TOKENS["study"], True),  # AuthCode
            ]
        return tags

    with tifffile.TiffWriter(path) as tif:
        for index, image in enumerate(lv):
            data, starts = _jpeg_with_restarts(image, (TILE_PX * 2) // 16)
            height, width = image.shape[:2]
            tif.write(
                iter([data]),
                shape=(height, width, 3),
                dtype=np.uint8,
                photometric="ycbcr",
                compression=7,
                rowsperstrip=height,
                subsampling=(2, 2),
                # Hamamatsu writes the spacing as resolution tags in pixels per centimetre.
                resolution=(1e4 / (NDPI_LEVEL0_MPP_UM * 2**index),) * 2,
                resolutionunit="CENTIMETER",
                software=f"NDP.scan 3.4 {TOKENS['hostname']}",
                datetime="1987:11:23 04:05:06",
                metadata=None,
                extratags=[
                    (271, 2, 0, "Hamamatsu", True),
                    (272, 2, 0, "C13220", True),
                    (65426, 4, len(starts), starts, True),  # McuStarts
                    *ndpi_tags(20.0 / (2**index), extra=index == 0),
                    *(_common_tags()[:6] if index == 0 else []),
                ],
            )
        macro = macro_image()
        tif.write(
            macro,
            compression="jpeg",
            photometric="rgb",
            metadata=None,
            extratags=[(271, 2, 0, "Hamamatsu", True), *ndpi_tags(-1.0, extra=True)],
        )
        tif.write(
            macro[:, :200].copy(),
            compression="jpeg",
            photometric="rgb",
            metadata=None,
            extratags=[(271, 2, 0, "Hamamatsu", True), *ndpi_tags(-2.0, extra=False)],
        )
    return PlantedSlide("ndpi", path, (path,))


def _philips_xml(level0_size: tuple[int, int], level_step: int) -> str:
    def attribute(name: str, value: str, group: str = "0x0000", element: str = "0x0000") -> str:
        return (
            f'<Attribute Name="{name}" Group="{group}" Element="{element}" PMSVR="IString">'
            f"{value}</Attribute>"
        )

    label_jpeg = io.BytesIO()
    Image.fromarray(label_image()).save(label_jpeg, "JPEG")
    label_b64 = base64.b64encode(label_jpeg.getvalue()).decode()
    barcode_b64 = base64.b64encode(TOKENS["barcode"].encode()).decode()

    def representation(i: int) -> str:
        width, height = (side // level_step**i for side in level0_size)
        spacing_mm = 0.00025 * level_step**i
        return (
            '<DataObject ObjectType="PixelDataRepresentation">'
            + attribute("PIIM_PIXEL_DATA_REPRESENTATION_NUMBER", str(i))
            + attribute("PIIM_PIXEL_DATA_REPRESENTATION_COLUMNS", str(width))
            + attribute("PIIM_PIXEL_DATA_REPRESENTATION_ROWS", str(height))
            + attribute("DICOM_PIXEL_SPACING", f'"{spacing_mm}" "{spacing_mm}"')
            + "</DataObject>"
        )

    levels_xml = "".join(representation(i) for i in range(3))
    return (
        '<?xml version="1.0" encoding="UTF-8" ?>'
        '<DataObject ObjectType="DPUfsImport">'
        + attribute("DICOM_PATIENT_NAME", TOKENS["patient_name"], "0x0010", "0x0010")
        + attribute("DICOM_PATIENT_ID", TOKENS["patient_id"], "0x0010", "0x0020")
        + attribute("DICOM_ACCESSION_NUMBER", TOKENS["accession"], "0x0008", "0x0050")
        + attribute("DICOM_ACQUISITION_DATETIME", "19871123040506.000000", "0x0008", "0x002A")
        + attribute("DICOM_DEVICE_SERIAL_NUMBER", TOKENS["serial"], "0x0018", "0x1000")
        + attribute("DICOM_INSTITUTION_NAME", TOKENS["institution"], "0x0008", "0x0080")
        + attribute("DICOM_MANUFACTURER", "PHILIPS", "0x0008", "0x0070")
        + attribute("PIM_DP_UFS_BARCODE", barcode_b64)
        + attribute("PIM_DP_SOURCE_FILE", TOKENS["filename"])
        + attribute("PIM_DP_UFS_INTERFACE_VERSION", "5.0")
        + '<Attribute Name="PIM_DP_SCANNED_IMAGES" Group="0x301D" Element="0x1003" '
        'PMSVR="IDataObjectArray"><Array>'
        '<DataObject ObjectType="DPScannedImage">'
        + attribute("PIM_DP_IMAGE_TYPE", "WSI")
        + attribute("DICOM_DERIVATION_DESCRIPTION", TOKENS["free_text"])
        + '<Attribute Name="PIIM_PIXEL_DATA_REPRESENTATION_SEQUENCE" Group="0x1001" '
        'Element="0x8B01" PMSVR="IDataObjectArray"><Array>' + levels_xml + "</Array></Attribute>"
        "</DataObject>"
        '<DataObject ObjectType="DPScannedImage">'
        + attribute("PIM_DP_IMAGE_TYPE", "LABELIMAGE")
        + attribute("PIM_DP_IMAGE_DATA", label_b64)
        + "</DataObject>"
        "</Array></Attribute>"
        "</DataObject>"
    )


def make_philips_tiff(
    directory: Path,
    level_step: int = 2,
    *,
    level0_size: tuple[int, int] = (LEVEL0_WIDTH_PX, LEVEL0_HEIGHT_PX),
    xml_level_step: int | None = None,
) -> PlantedSlide:
    """A Philips TIFF of three levels that step by ``level_step`` (2, or 4 as some scanners
    write); its XML lists each level's size and DICOM pixel spacing (0.25 µm at level 0).
    ``xml_level_step`` makes the XML describe other levels than the pages hold (a broken file)."""
    name = "philips_tiff" if level_step == 2 else f"philips_tiff_{level_step}x"
    path = directory / f"planted_{name}.tiff"
    level0 = tissue(*level0_size)
    lv = [level0[:: level_step**i, :: level_step**i].copy() for i in range(3)]
    xml = _philips_xml(level0_size, xml_level_step or level_step)
    with tifffile.TiffWriter(path) as tif:
        _write_levels(tif, lv, xml, _common_tags()[:6], "Philips DP v1.0")
        tif.write(
            label_image(),
            compression="lzw",
            description="Label",
            metadata=None,
            software="Philips DP v1.0",
        )
        tif.write(
            macro_image(),
            compression="jpeg",
            photometric="rgb",
            description="Macro",
            metadata=None,
            software="Philips DP v1.0",
        )
    return PlantedSlide(name, path, (path,))


# -- DICOM ------------------------------------------------------------------------------------


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


LAYOUT_MAKERS = {
    "svs": make_svs,
    "generic_tiff": make_generic_tiff,
    "ome_tiff": make_ome_tiff,
    "ndpi": make_ndpi,
    "philips_tiff": make_philips_tiff,
    "dicom": make_dicom_series,
}


# -- Leica SCN and Ventana BIF (BigTIFF) --------------------------------------------------------

LEICA_SCN_NAMESPACE = "http://www.leica-microsystems.com/scn/2010/10/01"
"""The SCN namespace OpenSlide's leica driver requires as the XML default namespace."""
SCN_MAIN_NM_PER_PX = 500
"""Level-0 pixel size of the synthetic SCN main image, in nanometres (0.5 um)."""
SCN_MACRO_NM_PER_PX = 10_000
"""Pixel size of the synthetic SCN macro image, in nanometres."""
VENTANA_SOFTWARE = "ScanOutputManager 1.1.0.15854"
"""Software value of Ventana BIF files (tifffile detects BIF by this prefix)."""


def _scn_xml(macro_shape: tuple[int, int]) -> str:
    """The SCN collection: a macro image covering the slide, and the main image (3 levels)."""
    macro_h, macro_w = macro_shape
    collection_w = macro_w * SCN_MACRO_NM_PER_PX
    collection_h = macro_h * SCN_MACRO_NM_PER_PX

    def image(name: str, view: tuple[int, int, int, int], dims: list[tuple[int, int, int]]) -> str:
        dimensions = "".join(
            f'<dimension sizeX="{w}" sizeY="{h}" r="{r}" ifd="{ifd}"/>'
            for r, (w, h, ifd) in enumerate(dims)
        )
        return (
            f'<image name="{name}" uuid="urn:uuid:{TOKENS["study"]}">'
            f"<creationDate>{TOKENS['scan_date']}.60Z</creationDate>"
            f'<device model="Leica SCN400;Leica SCN" version="1.5.1.10804 2012/05/10 13:29:07;'
            f'1.5.1.10864" serial="{TOKENS["serial"]}"/>'
            f'<pixels sizeX="{dims[0][0]}" sizeY="{dims[0][1]}">{dimensions}</pixels>'
            f'<view sizeX="{view[0]}" sizeY="{view[1]}" offsetX="{view[2]}" '
            f'offsetY="{view[3]}" spacingZ="0"/>'
            "<scanSettings><objectiveSettings><objective>20</objective></objectiveSettings>"
            "<illuminationSettings><numericalAperture>0.4</numericalAperture>"
            "<illuminationSource>brightfield</illuminationSource></illuminationSettings>"
            f"<user>{TOKENS['operator']}</user></scanSettings>"
            f"<comment>{TOKENS['free_text']}</comment>"
            "</image>"
        )

    main_view = (
        LEVEL0_WIDTH_PX * SCN_MAIN_NM_PER_PX,
        LEVEL0_HEIGHT_PX * SCN_MAIN_NM_PER_PX,
        SCN_MACRO_NM_PER_PX * 16,
        SCN_MACRO_NM_PER_PX * 16,
    )
    main_dims = [(LEVEL0_WIDTH_PX >> i, LEVEL0_HEIGHT_PX >> i, 1 + i) for i in range(3)]
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<scn xmlns="{LEICA_SCN_NAMESPACE}">'
        f'<collection name="{TOKENS["filename"]}" uuid="urn:uuid:{TOKENS["accession"]}" '
        f'sizeX="{collection_w}" sizeY="{collection_h}">'
        # The 2010/10/01 namespace stores the barcode Base64-encoded (OpenSlide decodes it).
        f"<barcode>{base64.b64encode(TOKENS['barcode'].encode()).decode()}</barcode>"
        + image(TOKENS["patient_name"], (collection_w, collection_h, 0, 0), [(macro_w, macro_h, 0)])
        + image(TOKENS["specimen"], main_view, main_dims)
        + "</collection></scn>"
    )


def make_leica_scn(directory: Path) -> PlantedSlide:
    """A Leica SCN: BigTIFF, IFD 0 is the (tiled) macro carrying the SCN XML, then the levels."""
    path = directory / "planted.scn"
    lv = levels()
    macro = macro_image()
    # The macro is tiled: OpenSlide requires directory 0 of a Leica slide to be tiled.
    macro_tiles = np.full((128, 384, 3), 255, dtype=np.uint8)
    macro_tiles[: macro.shape[0], : macro.shape[1]] = macro
    with tifffile.TiffWriter(path, bigtiff=True) as tif:
        tif.write(
            macro_tiles,
            tile=(128, 128),
            compression="jpeg",
            photometric="rgb",
            description=_scn_xml(macro_tiles.shape[:2]),
            software=f"Leica SCN {TOKENS['hostname']}",
            datetime="1987:11:23 04:05:06",
            metadata=None,
            extratags=_common_tags()[:6],
        )
        for image in lv:
            tif.write(
                image,
                tile=(TILE_PX, TILE_PX),
                compression="jpeg",
                compressionargs={"level": 95},
                photometric="rgb",
                resolution=(1e4 / (SCN_MAIN_NM_PER_PX / 1000), 1e4 / (SCN_MAIN_NM_PER_PX / 1000)),
                resolutionunit="CENTIMETER",
                metadata=None,
            )
    return PlantedSlide("leica_scn", path, (path,))


def _ventana_iscan_xmp() -> bytes:
    """The iScan XML packet of directory 0 (OpenSlide copies every attribute to a property)."""
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<iScan BarCode1D="{TOKENS["barcode"]}" BarCode2D="{TOKENS["accession"]}" '
        f'ScanDate="{TOKENS["scan_date"]}" ScanTime="04:05:06" UserName="{TOKENS["operator"]}" '
        f'UnitNumber="{TOKENS["serial"]}" SlideAnnotation="{TOKENS["free_text"]}" '
        f'FileName="{TOKENS["filename"]}" Magnification="20" ScanRes="0.465" Z-layers="1" '
        'Z-spacing="1" FocusMode="1" BuildVersion="3.3.1.1">'
        f'<AOI0 Left="10" Top="20" Right="2058" Bottom="1556" Name="{TOKENS["patient_id"]}"/>'
        "</iScan>"
    ).encode()


def _ventana_encode_info(cols: int, rows: int) -> bytes:
    """Level-0 EncodeInfo: one AOI of ``cols`` x ``rows`` tiles with two zero-overlap joints.

    Tiles are numbered from 1, serpentine from the bottom row (OpenSlide's ventana driver):
    tile 1 is bottom-left, tile 2 its right neighbour, tile ``2 * cols`` the tile above tile 1.
    """
    joints = (
        f'<TileJointInfo FlagJoined="1" Confidence="90" Direction="RIGHT" Tile1="1" Tile2="2" '
        f'OverlapX="0" OverlapY="0"/>'
        f'<TileJointInfo FlagJoined="1" Confidence="90" Direction="UP" Tile1="1" '
        f'Tile2="{2 * cols}" OverlapX="0" OverlapY="0"/>'
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<EncodeInfo Ver="2">'
        f'<SlideInfo UnitNumber="{TOKENS["serial"]}" Operator="{TOKENS["operator"]}"/>'
        "<SlideStitchInfo>"
        f'<ImageInfo AOIScanned="1" AOIIndex="0" Width="{TILE_PX}" Height="{TILE_PX}" '
        f'NumRows="{rows}" NumCols="{cols}" Pos-X="0" Pos-Y="0">{joints}</ImageInfo>'
        "</SlideStitchInfo>"
        '<AoiOrigin><AOI0 OriginX="0" OriginY="0"/></AoiOrigin>'
        "</EncodeInfo>"
    ).encode()


def make_ventana_bif(directory: Path) -> PlantedSlide:
    """A Ventana BIF: BigTIFF with Label_Image (IFD 0, iScan XMP), Thumbnail, then the levels."""
    path = directory / "planted.bif"
    lv = levels()
    iscan = _ventana_iscan_xmp()
    with tifffile.TiffWriter(path, bigtiff=True) as tif:
        tif.write(
            macro_image(),
            compression="jpeg",
            photometric="rgb",
            description="Label_Image",
            software=VENTANA_SOFTWARE,
            datetime="1987:11:23 04:05:06",
            metadata=None,
            extratags=[
                (700, 1, len(iscan), iscan, True),
                *[t for t in _common_tags()[:6] if t[0] != 700],
            ],
        )
        tif.write(
            lv[2][::2, ::2].copy(),
            compression="jpeg",
            photometric="rgb",
            description="Thumbnail",
            software=VENTANA_SOFTWARE,
            metadata=None,
        )
        for index, image in enumerate(lv):
            encode = _ventana_encode_info(LEVEL0_WIDTH_PX // TILE_PX, LEVEL0_HEIGHT_PX // TILE_PX)
            tif.write(
                image,
                tile=(TILE_PX, TILE_PX),
                compression="jpeg",
                compressionargs={"level": 95},
                photometric="rgb",
                description=f"level={index} mag={20 // 2**index:g} quality=95",
                software=VENTANA_SOFTWARE,
                metadata=None,
                extratags=[(700, 1, len(encode), encode, True)] if index == 0 else [],
            )
    return PlantedSlide("ventana_bif", path, (path,))


LAYOUT_MAKERS["philips_tiff_4x"] = functools.partial(make_philips_tiff, level_step=4)
LAYOUT_MAKERS["leica_scn"] = make_leica_scn
LAYOUT_MAKERS["ventana_bif"] = make_ventana_bif
TIFF_LAYOUTS = tuple(name for name in LAYOUT_MAKERS if name != "dicom")
"""The TIFF-based layouts: those de-identified in place (as patches)."""


# -- conversion inputs ------------------------------------------------------------------------

CONVERT_MPP_UM = 0.5
"""Pixel spacing of the conversion samples (resolution tags in pixels per centimetre)."""


def make_conversion_tiff(
    directory: Path,
    name: str,
    *,
    compression: str = "jpeg",
    tile_px: int | None = TILE_PX,
    size_px: tuple[int, int] = (LEVEL0_WIDTH_PX, LEVEL0_HEIGHT_PX),
    downsamples: tuple[int, ...] = (1, 2, 4),
    strip_rows: int = 64,
) -> Path:
    """A PHI-free, already de-identified-looking RGB pyramid for the converter's tests.

    ``compression`` is any tifffile codec name (``jpeg``, ``jpeg2000``, ``none``, ``zlib``...);
    ``tile_px=None`` writes stripes of ``strip_rows`` rows instead of tiles; ``downsamples``
    picks which levels exist (``(1,)`` leaves the whole pyramid to be generated, ``(1, 4)``
    leaves a gap); odd ``size_px`` give partial edge tiles.
    """
    path = directory / name
    width, height = size_px
    level0 = tissue(width, height, seed=3)
    with tifffile.TiffWriter(path, bigtiff=False) as tif:
        for index, factor in enumerate(downsamples):
            image = np.ascontiguousarray(level0[::factor, ::factor])
            args: dict[str, object] = {
                "compression": None if compression == "none" else compression,
                "photometric": "rgb",
                "subfiletype": 0 if index == 0 else 1,
                "resolution": (1e4 / (CONVERT_MPP_UM * factor),) * 2,
                "resolutionunit": "CENTIMETER",
                "metadata": None,
            }
            if tile_px is None:
                args["rowsperstrip"] = strip_rows
            else:
                args["tile"] = (tile_px, tile_px)
            if compression == "jpeg":
                args["compressionargs"] = {"level": 90}
            tif.write(image, **args)  # type: ignore[arg-type]
    return path
