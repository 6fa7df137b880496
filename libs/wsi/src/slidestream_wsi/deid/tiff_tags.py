"""Which TIFF tags a de-identified slide keeps: an allowlist, so unknown tags never survive.

Kept are the tags that describe pixels and their layout (TIFF 6.0 baseline and extension tags,
TIFF Technical Note 1 SubIFDs, TN2 JPEG, ICC profile), scanner make and model, and per vendor
the tags its readers need. Everything else is removed, notably the baseline tags that carry
identity or time: DocumentName (269), DateTime (306), Artist (315), HostComputer (316),
Software (305), PageName (285), Copyright (33432), XMP (700), IPTC (33723), Photoshop (34377),
the EXIF (34665), GPS (34853) and Interoperability (40965) IFDs.
"""

from __future__ import annotations

import tifffile

from slidestream_wsi.detect import SlideFormat

STRUCTURAL_TAGS = frozenset(
    {
        254,  # NewSubfileType
        255,  # SubfileType
        256,  # ImageWidth
        257,  # ImageLength
        258,  # BitsPerSample
        259,  # Compression
        262,  # PhotometricInterpretation
        263,  # Threshholding
        266,  # FillOrder
        271,  # Make (scanner vendor; NDPI readers require it)
        272,  # Model (scanner model, not the unit's serial)
        273,  # StripOffsets
        274,  # Orientation
        277,  # SamplesPerPixel
        278,  # RowsPerStrip
        279,  # StripByteCounts
        280,  # MinSampleValue
        281,  # MaxSampleValue
        282,  # XResolution
        283,  # YResolution
        284,  # PlanarConfiguration
        286,  # XPosition
        287,  # YPosition
        290,  # GrayResponseUnit
        291,  # GrayResponseCurve
        296,  # ResolutionUnit
        301,  # TransferFunction
        317,  # Predictor
        318,  # WhitePoint
        319,  # PrimaryChromaticities
        320,  # ColorMap
        322,  # TileWidth
        323,  # TileLength
        324,  # TileOffsets
        325,  # TileByteCounts
        330,  # SubIFDs (TIFF Technical Note 1)
        338,  # ExtraSamples
        339,  # SampleFormat
        340,  # SMinSampleValue
        341,  # SMaxSampleValue
        347,  # JPEGTables (TIFF Technical Note 2)
        512,  # JPEGProc (TIFF 6.0 §22, old-style JPEG)
        513,  # JPEGInterchangeFormat
        514,  # JPEGInterchangeFormatLength
        515,  # JPEGRestartInterval
        517,  # JPEGLosslessPredictors
        518,  # JPEGPointTransforms
        519,  # JPEGQTables
        520,  # JPEGDCTables
        521,  # JPEGACTables
        529,  # YCbCrCoefficients
        530,  # YCbCrSubSampling
        531,  # YCbCrPositioning
        532,  # ReferenceBlackWhite
        32997,  # ImageDepth (SGI)
        32998,  # TileDepth (SGI)
        34675,  # InterColorProfile (ICC)
    }
)

# Hamamatsu NDPI private tags that readers need for geometry (tifffile's NDPI registry names).
NDPI_KEPT_TAGS = frozenset(
    {
        65420,  # FileFormat
        65421,  # Magnification (SourceLens)
        65422,  # XOffsetFromSlideCenter
        65423,  # YOffsetFromSlideCenter
        65424,  # ZOffsetFromSlideCenter (focal plane)
        65425,  # TissueIndex
        65426,  # McuStarts
        65432,  # McuStartsHighBytes
        65441,  # CaptureMode
        65444,  # JpegQuality
        65445,  # RefocusInterval
        65447,  # BlankLines
        65500,  # DefaultGamma
    }
)

TAG_SOFTWARE = 305
TAG_IMAGE_DESCRIPTION = 270
TAG_EXIF_IFD = 34665
TAG_GPS_IFD = 34853
TAG_INTEROPERABILITY_IFD = 40965
PRIVATE_IFD_TAGS = frozenset({TAG_EXIF_IFD, TAG_GPS_IFD, TAG_INTEROPERABILITY_IFD})

JPEG_INTERCHANGE_FORMAT = 513
JPEG_INTERCHANGE_FORMAT_LENGTH = 514


def kept_tags(fmt: SlideFormat) -> frozenset[int]:
    """Tags kept as they are (ImageDescription and Software are handled per vendor)."""
    if fmt is SlideFormat.HAMAMATSU_NDPI:
        return STRUCTURAL_TAGS | NDPI_KEPT_TAGS
    return STRUCTURAL_TAGS


def tag_name(code: int) -> str:
    """A tag's public name from tifffile's registries, or ``tag<code>``."""
    for registry in (tifffile.TIFF.TAGS, tifffile.TIFF.NDPI_TAGS):
        name = registry.get(code, None)
        if isinstance(name, str):
            return name
    return f"tag{code}"
