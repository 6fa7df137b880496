"""The convert service's deterministic event ids."""

from __future__ import annotations

from uuid import UUID

EVENT_ID_NAMESPACE = UUID("6f1c3a52-94d1-4c1e-8a7e-2d0b7f4c9e13")
"""Namespace of convert's deterministic event ids: UUIDv5 of slide id, input digest and topic."""
