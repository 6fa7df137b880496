"""What upload leaves in the quarantine bucket for de-identification, and where.

Upload stores each slide under ``<tenant>/<slide_id>/`` (:func:`slide_object_key`): the bytes as
``original`` (tusd keeps ``original.info`` beside them) and, when a batch manifest named the
slide, its row as ``manifest.json`` (:class:`QuarantineManifestV1`). Deid reads both; the
manifest may identify a patient, so it never leaves quarantine — events only reference it.
The de-identified, converted and derived buckets use the same ``<tenant>/<slide_id>/`` prefix.
"""

from __future__ import annotations

from typing import ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from slidestream_contracts.events import Sha256Hex

ORIGINAL_ARTEFACT = "original"
"""The uploaded bytes (tusd's S3 store writes them under the key the pre-create hook chose)."""
MANIFEST_ARTEFACT = "manifest.json"
"""The slide's manifest row, written by upload when its batch has one."""
TUS_INFO_SUFFIX = ".info"
"""tusd's S3 store keeps an upload's metadata (the client's file name) in ``<key>.info``."""
MAX_MANIFEST_BYTES = 1024 * 1024
"""A manifest row is a few hundred bytes; a reader refuses more rather than parse it."""


class QuarantineManifestError(ValueError):
    """A stored manifest is not a :class:`QuarantineManifestV1`. The message names the fields
    that are wrong, never their values (it reaches logs and dead-letter records)."""


def slide_object_key(tenant: str, slide_id: UUID, artefact: str) -> str:
    """``<tenant>/<slide_id>/<artefact>``: every bucket keeps one slide's objects under one
    prefix, so a tenant's or a slide's objects are listed and deleted by prefix."""
    return f"{tenant}/{slide_id}/{artefact}"


def tus_info_key(original_key: str) -> str:
    """Where tusd keeps the metadata of the upload stored at ``original_key``."""
    return f"{original_key}{TUS_INFO_SUFFIX}"


class QuarantineManifestV1(BaseModel):
    """One slide's row of its batch manifest (``<tenant>/<slide_id>/manifest.json``).

    Manifests written before the model existed carry no ``schema_version``; they are this same
    shape, so the field defaults to 1 and they still read. A later shape gets a new version (and
    model); readers refuse a version they do not know rather than guess.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    SCHEMA_VERSION: ClassVar[int] = 1

    schema_version: Literal[1] = 1
    filename: str
    """The file name the manifest gives (sanitised by upload); may identify the patient."""
    sha256: Sha256Hex
    case_id: str | None = None
    specimen_id: str | None = None
    species: str | None = None
    organ: str | None = None
    stain: str | None = None
    extra: dict[str, str] = Field(default_factory=dict)
    """Every other column of the partner's manifest, by lower-case column name."""

    def to_json_bytes(self) -> bytes:
        """The stored form: UTF-8 JSON, fields in declaration order."""
        return self.model_dump_json().encode()

    @classmethod
    def from_json_bytes(cls, content: bytes) -> QuarantineManifestV1:
        """Parse a stored manifest, or raise :class:`QuarantineManifestError`."""
        if len(content) > MAX_MANIFEST_BYTES:
            raise QuarantineManifestError(f"manifest is larger than {MAX_MANIFEST_BYTES} bytes")
        try:
            return cls.model_validate_json(content)
        except ValidationError as error:
            # pydantic's own message quotes the input, which may be patient data.
            places = sorted(
                {".".join(str(p) for p in e["loc"]) or "<document>" for e in error.errors()}
            )
            raise QuarantineManifestError(
                f"manifest is not a {cls.__name__}: {', '.join(places)}"
            ) from None
