"""What inference talks to, each behind a small Protocol: Triton, the model registry, routes."""
