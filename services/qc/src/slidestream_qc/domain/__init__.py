"""Pure rules of the qc service (no SDK imports: the import contract checks it)."""
