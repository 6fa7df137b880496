"""The slide domain of slidestream, pure (no Kafka, S3, database or HTTP; no import of the
platform or the contracts, which ``lint-imports`` holds).

The base install (what the upload service uses): :mod:`~slidestream_wsi.detect` (format from
content), :mod:`~slidestream_wsi.archive` (the zip policy), :mod:`~slidestream_wsi.limits` and
:mod:`~slidestream_wsi.errors`. With the ``processing`` extra: :mod:`~slidestream_wsi.validate`
(bounded opening), :mod:`~slidestream_wsi.tiff` and :mod:`~slidestream_wsi.dicom` (structure,
inventory, patching), :mod:`~slidestream_wsi.deid` (de-identification),
:mod:`~slidestream_wsi.pseudonyms` (keyed pseudonyms), :mod:`~slidestream_wsi.scan`
(residual-PHI scan), :mod:`~slidestream_wsi.convert` (DICOM WSI and pyramidal TIFF output) and
:mod:`~slidestream_wsi.qc` (quality control). Every refusal is a
:class:`~slidestream_wsi.errors.SlideError`.
"""
