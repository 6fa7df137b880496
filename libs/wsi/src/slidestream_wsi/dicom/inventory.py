"""Every text value of a DICOM instance's dataset and file meta, for the residual-PHI scan."""

from __future__ import annotations

from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag

from slidestream_wsi.dicom.pixeldata import read_dicom_header
from slidestream_wsi.dicom.validate import ASSOCIATED_IMAGE_FLAVORS, image_flavor
from slidestream_wsi.limits import SlideLimits
from slidestream_wsi.scan import MetadataInventory, MetadataString

_BINARY_VRS = frozenset({"SQ", "OB", "OW", "OF", "OD", "OL", "OV", "UN"})


def dicom_inventory(path: Path, limits: SlideLimits) -> MetadataInventory:
    header = read_dicom_header(path, limits)
    ds = header.dataset
    strings: list[MetadataString] = []
    _collect(ds.file_meta, strings)
    _collect(ds, strings)
    flavor = image_flavor(ds.get("ImageType", []))
    associated = (flavor.lower(),) if flavor in ASSOCIATED_IMAGE_FLAVORS else ()
    return MetadataInventory(tuple(strings), associated)


def _collect(ds: Dataset, out: list[MetadataString]) -> None:
    for elem in ds.iterall():
        if elem.VR in _BINARY_VRS or elem.value is None:
            continue
        tag = BaseTag(elem.tag)
        location = f"dicom.{elem.keyword or f'({tag.group:04X},{tag.element:04X})'}"
        raw = elem.value
        values = list(raw) if isinstance(raw, MultiValue | list | tuple) else [raw]
        for value in values:
            text = str(value)
            if text:
                out.append(MetadataString(location, text))
