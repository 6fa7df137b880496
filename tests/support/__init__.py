"""Code the test suites share (fixtures live in conftest.py files; helpers live here)."""
