"""Whether a new upload may start: size limits, the tenant's quota and a declared sha256 (tusd
``pre-create``)."""

from __future__ import annotations

from dataclasses import dataclass

SHA256_HEX_LENGTH = 64


@dataclass(frozen=True, slots=True)
class UploadRequest:
    declared_size_bytes: int | None
    """``Upload-Length``; ``None`` when the client asked to defer it (not accepted)."""
    declared_sha256: str | None
    filename: str


@dataclass(frozen=True, slots=True)
class Refusal:
    status_code: int
    reason: str
    message: str


def admit(
    request: UploadRequest,
    *,
    max_upload_bytes: int,
    quota_bytes: int,
    used_bytes: int,
    sha256_required: bool = True,
) -> Refusal | None:
    """``None`` to admit, or why not (HTTP status per tus 1.0 and RFC 9110).

    ``sha256_required``: an upload must declare its sha256 (``Upload-Metadata``), which the
    complete bytes are checked against; without one, bytes corrupted on the way, or replaced in
    quarantine before verification, would pass as the partner's slide.
    """
    size = request.declared_size_bytes
    if size is None:
        # tus creation-defer-length would let a client lie about the size until the end.
        return Refusal(400, "length-required", "Upload-Length must be declared up front")
    if size <= 0:
        return Refusal(400, "empty-upload", "a slide cannot be empty (Upload-Length is 0)")
    if size > max_upload_bytes:
        return Refusal(
            413, "too-large", f"Upload-Length exceeds the maximum of {max_upload_bytes} bytes"
        )
    if used_bytes + size > quota_bytes:
        return Refusal(
            413,
            "quota-exceeded",
            f"this upload would exceed the tenant quota ({quota_bytes - used_bytes} bytes left)",
        )
    sha = request.declared_sha256
    if sha is None and sha256_required:
        return Refusal(
            400,
            "checksum-required",
            "Upload-Metadata must declare the file's sha256 (64 lowercase hex digits); "
            "the platform checks the bytes it receives against it",
        )
    if sha is not None and (
        len(sha) != SHA256_HEX_LENGTH or any(c not in "0123456789abcdef" for c in sha)
    ):
        return Refusal(400, "bad-checksum", "metadata sha256 must be 64 lowercase hex digits")
    return None
