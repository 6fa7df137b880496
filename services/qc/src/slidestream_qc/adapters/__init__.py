"""The qc service's adapters: the QC run, its tables and their repository."""
