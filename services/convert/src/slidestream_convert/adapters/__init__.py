"""The convert service's adapters: the converter, its tables and their repository."""
