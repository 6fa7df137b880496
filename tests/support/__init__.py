"""Code the test suites share (fixtures live in conftest.py files; helpers live here).

A test module, conftest or benchmark imports shared code only from this package (or generated
data from ``slidestream_samples``), never from another test module, so that moving or deleting
a test never breaks another."""
