"""Models in Triton's repository layout (see the package description)."""
