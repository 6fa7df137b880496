"""Sample whole-slide images for development: fake PHI planted in every place a vendor puts
identity, and generated H&E slides with planted QC truth.

Used by the tests (every de-identification claim is checked against these), by ``make demo``
(sample slides a newcomer can push through the pipeline) and by the benchmarks; never by a
service or by ``slidestream_wsi`` (an import contract in pyproject.toml keeps it so, and no
service image installs this package). The identities are invented.

One module per vendor layout (:mod:`~slidestream_samples.aperio`,
:mod:`~slidestream_samples.hamamatsu`, :mod:`~slidestream_samples.philips`,
:mod:`~slidestream_samples.ome`, :mod:`~slidestream_samples.leica`,
:mod:`~slidestream_samples.ventana`, :mod:`~slidestream_samples.generic`,
:mod:`~slidestream_samples.dicom`), the shared parts (:mod:`~slidestream_samples.phi`,
:mod:`~slidestream_samples.pixels`, :mod:`~slidestream_samples.labels`,
:mod:`~slidestream_samples.tiff_common`), the converter's inputs
(:mod:`~slidestream_samples.conversion`) and the QC painting
(:mod:`~slidestream_samples.painting`, :mod:`~slidestream_samples.artefacts`,
:mod:`~slidestream_samples.qc_bench`; these need OpenCV and are not imported here), and the
reference models' training slides with planted tissue types
(:mod:`~slidestream_samples.tissue_types`) with ``make models``'s pipeline
(:mod:`~slidestream_samples.reference_models`).
"""

from slidestream_samples.aperio import make_svs
from slidestream_samples.conversion import CONVERT_MPP_UM, make_conversion_tiff
from slidestream_samples.dicom import make_dicom_series
from slidestream_samples.generic import make_generic_tiff
from slidestream_samples.hamamatsu import NDPI_LEVEL0_MPP_UM, make_ndpi
from slidestream_samples.layouts import LAYOUT_MAKERS, SCANNER_MODEL_OF_LAYOUT, TIFF_LAYOUTS
from slidestream_samples.leica import LEICA_SCN_NAMESPACE, make_leica_scn
from slidestream_samples.ome import make_ome_tiff
from slidestream_samples.phi import LABEL_TOKENS, TOKENS, PlantedSlide
from slidestream_samples.philips import make_philips_tiff
from slidestream_samples.pixels import LEVEL0_HEIGHT_PX, LEVEL0_WIDTH_PX, TILE_PX, tissue
from slidestream_samples.ventana import make_ventana_bif

__all__ = [
    "CONVERT_MPP_UM",
    "LABEL_TOKENS",
    "LAYOUT_MAKERS",
    "LEICA_SCN_NAMESPACE",
    "LEVEL0_HEIGHT_PX",
    "LEVEL0_WIDTH_PX",
    "NDPI_LEVEL0_MPP_UM",
    "SCANNER_MODEL_OF_LAYOUT",
    "TIFF_LAYOUTS",
    "TILE_PX",
    "TOKENS",
    "PlantedSlide",
    "make_conversion_tiff",
    "make_dicom_series",
    "make_generic_tiff",
    "make_leica_scn",
    "make_ndpi",
    "make_ome_tiff",
    "make_philips_tiff",
    "make_svs",
    "make_ventana_bif",
    "tissue",
]
