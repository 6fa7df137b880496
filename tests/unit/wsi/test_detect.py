from __future__ import annotations

import io
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
import tifffile
from PIL import Image

from slidestream_wsi.detect import Container, SlideFormat, detect_format, sniff_container
from slidestream_wsi.errors import UnsafeArchiveError, UnsupportedFormatError

EXPECTED = {
    "svs": SlideFormat.APERIO_SVS,
    "generic_tiff": SlideFormat.GENERIC_TIFF,
    "ome_tiff": SlideFormat.OME_TIFF,
    "ndpi": SlideFormat.HAMAMATSU_NDPI,
    "philips_tiff": SlideFormat.PHILIPS_TIFF,
}


@pytest.mark.parametrize("layout", sorted(EXPECTED))
def test_tiff_layouts_are_detected_by_content(
    planted: dict[str, object], layout: str, tmp_path: Path
) -> None:
    source = planted[layout].path  # type: ignore[attr-defined]
    renamed = tmp_path / "upload.bin"  # the name says nothing
    shutil.copyfile(source, renamed)
    assert detect_format(renamed).format is EXPECTED[layout]


def test_dicom_instance_and_zipped_series(planted: dict[str, object], tmp_path: Path) -> None:
    series = planted["dicom"]
    assert detect_format(series.files[0]).format is SlideFormat.DICOM_WSI  # type: ignore[attr-defined]
    archive = tmp_path / "series.zip"
    shutil.make_archive(str(archive.with_suffix("")), "zip", series.path)  # type: ignore[attr-defined]
    assert detect_format(archive).format is SlideFormat.DICOM_WSI_ZIP


def test_mrxs_zip_needs_its_data_folder(tmp_path: Path) -> None:
    good = tmp_path / "mrxs.zip"
    with zipfile.ZipFile(good, "w") as archive:
        archive.writestr("slide.mrxs", b"x")
        archive.writestr("slide/Slidedat.ini", b"[GENERAL]")
        archive.writestr("slide/Data0000.dat", b"y")
    assert detect_format(good).format is SlideFormat.MIRAX_ZIP
    bad = tmp_path / "mrxs_only.zip"
    with zipfile.ZipFile(bad, "w") as archive:
        archive.writestr("slide.mrxs", b"x")
    with pytest.raises(UnsupportedFormatError):
        detect_format(bad)


def test_non_slides_are_refused(tmp_path: Path) -> None:
    png = tmp_path / "fake.svs"
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "PNG")
    png.write_bytes(buffer.getvalue())
    text = tmp_path / "notes.svs"
    text.write_text("Aperio Image Library, honestly")
    plain_tiff = tmp_path / "photo.tiff"
    tifffile.imwrite(plain_tiff, np.zeros((64, 64, 3), np.uint8))
    other_dicom = tmp_path / "ct.dcm"
    ds = pydicom.Dataset()
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    pydicom.dcmwrite(other_dicom, ds, enforce_file_format=True)
    for path in (png, text, plain_tiff, other_dicom):
        with pytest.raises(UnsupportedFormatError):
            detect_format(path)


def test_zip_with_traversal_is_refused_at_detection(tmp_path: Path) -> None:
    path = tmp_path / "evil.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("../../etc/cron.d/evil", b"x")
    with pytest.raises(UnsafeArchiveError):
        detect_format(path)


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"II*\x00" + b"\x00" * 128, Container.TIFF),
        (b"MM\x00*" + b"\x00" * 128, Container.TIFF),
        (b"II+\x00\x08\x00\x00\x00", Container.BIGTIFF),
        (b"\x00" * 128 + b"DICM" + b"\x02\x00", Container.DICOM),
        (b"PK\x03\x04" + b"\x00" * 30, Container.ZIP),
        (b"\x89PNG\r\n\x1a\n", None),
        (b"%PDF-1.7", None),
        (b"PK\x05\x06" + b"\x00" * 18, None),  # an empty zip is no slide
        (b"", None),
    ],
)
def test_sniff_container_from_the_first_bytes(head: bytes, expected: Container | None) -> None:
    assert sniff_container(head) is expected
