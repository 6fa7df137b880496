"""Errors the stack reports to the developer (the CLI prints them without a traceback)."""

from __future__ import annotations


class StackError(RuntimeError):
    """A part could not be built, started or reached."""
