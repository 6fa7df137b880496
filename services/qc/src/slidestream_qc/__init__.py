"""The qc service: a quality gate on every converted slide."""
