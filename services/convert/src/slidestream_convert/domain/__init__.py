"""Pure rules of the convert service (no SDK imports: the import contract checks it)."""
