"""slidestream inference service."""
