"""An OME-TIFF: levels as SubIFDs, PHI in the OME-XML (experimenter, instrument, annotations)."""

from __future__ import annotations

from pathlib import Path

import tifffile

from slidestream_samples.labels import label_image, macro_image
from slidestream_samples.phi import TOKENS, PlantedSlide
from slidestream_samples.pixels import LEVEL0_HEIGHT_PX, LEVEL0_WIDTH_PX, TILE_PX, levels
from slidestream_samples.tiff_common import SCAN_DATETIME, common_tags

OME_NAMESPACE = "http://www.openmicroscopy.org/Schemas/OME/2016-06"


def _ome_image(index: int, name: str, width: int, height: int, ifd: int) -> str:
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


def _ome_xml() -> str:
    first, last = TOKENS["experimenter"].split(" ")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<OME xmlns="{OME_NAMESPACE}" Creator="synthetic">'
        f'<Experimenter ID="Experimenter:0" FirstName="{first}" LastName="{last}" '
        f'Email="{TOKENS["operator"].replace(" ", ".")}@example.org" '
        f'Institution="{TOKENS["institution"]}"/>'
        f'<Instrument ID="Instrument:0"><Microscope SerialNumber="{TOKENS["serial"]}"/>'
        f'<Objective ID="Objective:0" NominalMagnification="20"/></Instrument>'
        + _ome_image(0, TOKENS["filename"], LEVEL0_WIDTH_PX, LEVEL0_HEIGHT_PX, 0)
        + _ome_image(1, "label", 300, 100, 1)
        + _ome_image(2, "macro", 360, 120, 2)
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
            datetime=SCAN_DATETIME,
            metadata=None,
            extratags=common_tags()[:6],
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
