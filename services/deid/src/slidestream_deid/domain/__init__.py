"""The deid service's pure logic: which identifiers a slide has, what its output is scanned for,
when a residual fails the slide, how pseudonyms are assigned and where outputs go.

The slide work itself (detection, bounded opening, rewriting, scanning) is
:mod:`slidestream_wsi`, which is pure too; I/O lives in ``adapters/`` and ``workflow.py``.
"""
