"""Are the objects whole? Every reference a decision event carries, and every object a service
wrote under the batch's tenant, read back from MinIO itself (not through the proxy) and hashed.

A reference is whole when the object exists with the size and SHA-256 the event states; an
object the platform wrote (``x-amz-meta-sha256``, :mod:`slidestream_platform.objectstore`) is
whole when its bytes hash to that value. Objects tusd writes (the originals, its ``.info``
files) carry no such value: the originals are checked through the upload events' references.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from minio import Minio
from minio.error import S3Error

from slidestream_devstack.buckets import BUCKETS
from tests.support.faults.ledger import DECISION_TOPICS, Ledger

SHA256_METADATA = "x-amz-meta-sha256"
READ_CHUNK_BYTES = 1 << 20


def object_refs(value: Any) -> Iterator[dict[str, Any]]:
    """Every ``ObjectRef`` (bucket, key, sha256, size) anywhere in an event's JSON."""
    if isinstance(value, dict):
        if {"bucket", "key", "sha256", "size_bytes"} <= value.keys():
            yield value
        for item in value.values():
            yield from object_refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from object_refs(item)


def object_sha256(client: Minio, bucket: str, key: str) -> tuple[str, int]:
    response = client.get_object(bucket, key)
    digest = hashlib.sha256()
    size = 0
    try:
        for chunk in response.stream(READ_CHUNK_BYTES):
            digest.update(chunk)
            size += len(chunk)
    finally:
        response.close()
        response.release_conn()
    return digest.hexdigest(), size


@dataclass
class ObjectCheck:
    checked: int = 0
    broken: list[str] = field(default_factory=list)
    """``bucket/key: why`` of each object that is missing, short or not what it claims."""


def check_objects(
    client: Minio, ledger: Ledger, slide_ids: Iterable[str], tenant: str
) -> ObjectCheck:
    result = ObjectCheck()
    seen: set[tuple[str, str]] = set()
    for slide_id in slide_ids:
        for record in ledger.of(slide_id, DECISION_TOPICS):
            if record.topic.startswith("dlq."):
                continue  # a dead letter carries the original message, not new objects
            for ref in object_refs(record.json()):
                where = (ref["bucket"], ref["key"])
                if where in seen:
                    continue
                seen.add(where)
                result.checked += 1
                problem = _ref_problem(client, ref)
                if problem:
                    result.broken.append(f"{ref['bucket']}/{ref['key']}: {problem}")
    for bucket in BUCKETS:
        for item in client.list_objects(bucket, prefix=f"{tenant}/", recursive=True):
            key = str(item.object_name)
            if (bucket, key) in seen:
                continue
            written = _written_problem(client, bucket, key)
            if written is None:
                continue
            result.checked += 1
            if written:
                result.broken.append(f"{bucket}/{key}: {written}")
    return result


def _ref_problem(client: Minio, ref: dict[str, Any]) -> str:
    try:
        digest, size = object_sha256(client, ref["bucket"], ref["key"])
    except S3Error as error:
        return f"unreadable ({error.code})"
    if size != ref["size_bytes"]:
        return f"{size} bytes, the event says {ref['size_bytes']}"
    if digest != ref["sha256"]:
        return "sha256 differs from the event's"
    return ""


def _written_problem(client: Minio, bucket: str, key: str) -> str | None:
    """None for an object without a stated digest (tusd's), else "" when whole."""
    stat = client.stat_object(bucket, key)
    stated = (stat.metadata or {}).get(SHA256_METADATA)
    if stated is None:
        return None
    digest, size = object_sha256(client, bucket, key)
    if size != stat.size:
        return f"read {size} of {stat.size} bytes"
    return "" if digest == stated else "sha256 differs from its x-amz-meta-sha256"
