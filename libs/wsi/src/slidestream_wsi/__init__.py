"""The slide domain of slidestream, pure (no Kafka, S3, database or HTTP).

Modules: :mod:`~slidestream_wsi.detect` (format from content), :mod:`~slidestream_wsi.limits`
and :mod:`~slidestream_wsi.validate` (bounded opening), :mod:`~slidestream_wsi.archive` (safe
zip handling), :mod:`~slidestream_wsi.deid` (de-identification in place),
:mod:`~slidestream_wsi.pseudonyms` (keyed pseudonyms) and :mod:`~slidestream_wsi.scan`
(residual-PHI scan). Every refusal is a :class:`~slidestream_wsi.errors.SlideError`.
"""
