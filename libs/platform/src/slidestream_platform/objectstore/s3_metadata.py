"""User metadata and headers as S3 carries them: checks, the digest header, ETag quoting."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from slidestream_platform.objectstore.port import SHA256_METADATA_KEY

_USER_METADATA_PREFIX: Final = "x-amz-meta-"
#: User-metadata names: lower-case HTTP token characters, so they survive every S3 server.
_METADATA_KEY_RE: Final = re.compile(r"^[a-z0-9][a-z0-9-]*$")
#: Values travel as HTTP header values: printable US-ASCII only (RFC 9110 section 5.5).
_METADATA_VALUE_RE: Final = re.compile(r"^[\x20-\x7e]*$")
SHA256_HEX_RE: Final = re.compile(r"^[0-9a-f]{64}$")

#: The SDK's type for header/metadata dictionaries.
SdkHeaders = dict[str, str | list[str] | tuple[str]]


def check_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    """The caller's user metadata, refused before any request when S3 cannot carry it."""
    checked: dict[str, str] = {}
    for name, value in (metadata or {}).items():
        if not _METADATA_KEY_RE.match(name):
            msg = f"metadata name {name!r} must match {_METADATA_KEY_RE.pattern}"
            raise ValueError(msg)
        if name == SHA256_METADATA_KEY:
            msg = f"metadata name {name!r} is reserved for the content digest"
            raise ValueError(msg)
        if not _METADATA_VALUE_RE.match(value):
            msg = f"metadata value of {name!r} must be printable ASCII"
            raise ValueError(msg)
        checked[name] = value
    return checked


def strip_etag(etag: str | None) -> str:
    """The ETag without the quotes S3 wraps it in (RFC 9110 section 8.8.3)."""
    return (etag or "").strip('"')


def headers_for(content_type: str, user_metadata: Mapping[str, str], sha256: str) -> SdkHeaders:
    """The SDK headers of an object written with its digest."""
    # The SDK sends Content-Type as is and prefixes every other name with x-amz-meta-.
    headers: SdkHeaders = {"Content-Type": content_type, **user_metadata}
    headers[SHA256_METADATA_KEY] = sha256
    return headers


def parse_user_metadata(raw: Mapping[str, str] | None) -> tuple[dict[str, str], str | None]:
    """The user metadata and the digest (``None`` when absent or malformed) of a response."""
    metadata: dict[str, str] = {}
    sha256: str | None = None
    for header, value in (raw or {}).items():
        name = header.lower()
        if not name.startswith(_USER_METADATA_PREFIX):
            continue
        name = name.removeprefix(_USER_METADATA_PREFIX)
        if name == SHA256_METADATA_KEY:
            digest = value.strip().lower()
            # Someone else's malformed value is no digest at all, not a reason to fail.
            sha256 = digest if SHA256_HEX_RE.match(digest) else None
        else:
            metadata[name] = value
    return metadata, sha256
