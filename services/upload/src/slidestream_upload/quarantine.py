"""What upload reads and writes in the quarantine bucket, besides tusd's own objects.

* :func:`inspect_upload`: what the stored bytes are, from their content — the container
  (:func:`slidestream_wsi.detect.sniff_container`), the sha256 against the declared one and, for
  a zip, the member policy of :func:`slidestream_wsi.archive.check_zip` over the central
  directory only (ranged reads: a multi-GB archive is not downloaded to be checked). A zip's end
  records come first, from the object's last bytes: a directory over the caps, or none, is
  refused before the object is hashed or a ``ZipFile`` built (opening one reads the whole
  directory, which is how a zip declaring millions of entries ran the service out of memory);
* :func:`write_manifest`: the slide's manifest row (:class:`QuarantineManifestV1`), which may
  identify a patient and so stays beside the slide;
* :func:`remove_upload`: everything of one upload, for refused and expired uploads.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO
from uuid import UUID

from slidestream_contracts.events import ObjectRef, SlideFormat
from slidestream_contracts.quarantine import (
    MANIFEST_ARTEFACT,
    QuarantineManifestV1,
    slide_object_key,
    tus_info_key,
)
from slidestream_platform.objectstore.port import ObjectStore
from slidestream_platform.objectstore.ranged import RangedObjectSource
from slidestream_upload.adapters.tables import BatchItemRow
from slidestream_wsi.archive import check_zip, check_zip_directory
from slidestream_wsi.detect import SNIFF_BYTES, sniff_container
from slidestream_wsi.errors import SlideError

HASH_CHUNK_BYTES = 8 * 1024 * 1024
TUS_PART_SUFFIX = ".part"
"""tusd's S3 store keeps an unfinished last part in ``<key>.part``."""


@dataclass(frozen=True, slots=True)
class Inspection:
    """What the stored bytes turned out to be, or why they are refused (``reason``)."""

    container: SlideFormat | None
    sha256: str | None
    """``None`` when the upload was refused before its bytes were hashed."""
    reason: str | None = None
    detail: str = ""


def inspect_upload(
    store: ObjectStore, bucket: str, key: str, size_bytes: int, declared_sha256: str | None
) -> Inspection:
    """Sniff, bound a zip's directory from its end, hash, then check a zip's members."""
    with store.open_stream(bucket, key, length=SNIFF_BYTES) as stream:
        head = stream.read(SNIFF_BYTES)
    sniffed = sniff_container(head)
    container = None if sniffed is None else SlideFormat(sniffed.value)
    source = RangedObjectSource(store, bucket, key, size_bytes, name="original.zip")
    if container is SlideFormat.ZIP:
        problem = _archive_problem(source, check_zip_directory)
        if problem is not None:
            return Inspection(container, None, problem.reason, str(problem))
    digest = _sha256(store, bucket, key)
    if container is None:
        return Inspection(
            None, digest, "unsupported-format", "not a TIFF, BigTIFF, DICOM or zip file"
        )
    if declared_sha256 is not None and digest != declared_sha256:
        return Inspection(
            container,
            digest,
            "checksum-mismatch",
            "the stored bytes do not match the declared sha256",
        )
    if container is SlideFormat.ZIP:
        problem = _archive_problem(source, check_zip)
        if problem is not None:
            return Inspection(container, digest, problem.reason, str(problem))
    return Inspection(container, digest)


def _sha256(store: ObjectStore, bucket: str, key: str) -> str:
    digest = hashlib.sha256()
    with store.open_stream(bucket, key) as stream:
        while chunk := stream.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _archive_problem(
    source: RangedObjectSource, check: Callable[[BinaryIO], object]
) -> SlideError | None:
    """What ``check`` refuses in the archive read through ``source`` (ranged reads)."""
    try:
        with source.open() as reader:
            check(reader)
    except SlideError as problem:
        if source.failure is not None:
            # The store failed, not the archive: retry later rather than refuse the upload.
            raise source.failure from problem
        return problem
    return None


def write_manifest(
    store: ObjectStore, bucket: str, tenant: str, slide_id: UUID, item: BatchItemRow
) -> ObjectRef:
    """Store the slide's manifest row beside it; the reference goes into slides.uploaded.v1."""
    manifest = QuarantineManifestV1(
        filename=item.filename,
        sha256=item.sha256,
        case_id=item.case_id,
        specimen_id=item.specimen_id,
        species=item.species,
        organ=item.organ,
        stain=item.stain,
        extra=json.loads(item.extra_json),
    )
    body = manifest.to_json_bytes()
    ref = store.put_stream(
        bucket,
        slide_object_key(tenant, slide_id, MANIFEST_ARTEFACT),
        io.BytesIO(body),
        len(body),
        content_type="application/json",
    )
    return ref.to_event_ref()


def remove_upload(store: ObjectStore, bucket: str, object_key: str) -> None:
    """Delete an upload's bytes and tusd's objects beside them (nothing of it stays)."""
    for key in (object_key, tus_info_key(object_key), f"{object_key}{TUS_PART_SUFFIX}"):
        store.delete(bucket, key)
