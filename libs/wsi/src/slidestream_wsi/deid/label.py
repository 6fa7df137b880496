"""A generated replacement label that shows only the pseudonym."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET  # only to build elements; parsing goes through defusedxml

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

from slidestream_wsi.deid.xmltext import local_name, parse_xml, serialise_xml

LABEL_WIDTH_PX = 320
LABEL_HEIGHT_PX = 96
_MARGIN_PX = 12


def pseudonym_label(pseudonym: str) -> npt.NDArray[np.uint8]:
    """An RGB label image, black text on white, with the pseudonym and nothing else."""
    image = Image.new("RGB", (LABEL_WIDTH_PX, LABEL_HEIGHT_PX), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=18)
    draw.text((_MARGIN_PX, LABEL_HEIGHT_PX // 2 - 10), pseudonym, fill="black", font=font)
    return np.asarray(image, dtype=np.uint8)


def pseudonym_label_jpeg(image: npt.NDArray[np.uint8]) -> bytes:
    """The label as a baseline JPEG (JFIF, YCbCr 4:2:0) for formats that store it so."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=90, subsampling=2)
    return buffer.getvalue()


OME_LABEL_IMAGE_NAME = "label"
"""Name of the generated label's OME Image: tifffile and tiffslide name the series by it."""


def add_ome_label_image(ome_xml: str, ifd_index: int) -> str:
    """OME-XML with an ``<Image Name="label">`` whose one plane is directory ``ifd_index``.

    The Image goes after the last existing Image (OME 2016-06 schema order: Image elements come
    before StructuredAnnotations and ROIs), with a 3-sample interleaved uint8 channel like the
    generated label.
    """
    root = parse_xml(ome_xml)
    namespace = root.tag[1:].split("}", 1)[0] if root.tag.startswith("{") else ""

    def tag(name: str) -> str:
        return f"{{{namespace}}}{name}" if namespace else name

    children = list(root)
    images = [i for i, child in enumerate(children) if local_name(child.tag) == "Image"]
    position = images[-1] + 1 if images else len(children)
    image = ET.Element(tag("Image"), {"ID": "Image:label", "Name": OME_LABEL_IMAGE_NAME})
    pixels = ET.SubElement(
        image,
        tag("Pixels"),
        {
            "ID": "Pixels:label",
            "DimensionOrder": "XYCZT",
            "Type": "uint8",
            "SizeX": str(LABEL_WIDTH_PX),
            "SizeY": str(LABEL_HEIGHT_PX),
            "SizeC": "3",
            "SizeZ": "1",
            "SizeT": "1",
            "Interleaved": "true",
        },
    )
    ET.SubElement(pixels, tag("Channel"), {"ID": "Channel:label:0", "SamplesPerPixel": "3"})
    ET.SubElement(pixels, tag("TiffData"), {"IFD": str(ifd_index), "PlaneCount": "1"})
    root.insert(position, image)
    return serialise_xml(root, ome_xml)
