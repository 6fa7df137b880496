"""Object storage for slidestream: the port services depend on and its MinIO-SDK adapter."""

from slidestream_platform.objectstore.minio_store import MinioObjectStore
from slidestream_platform.objectstore.minio_writes import StreamLengthError
from slidestream_platform.objectstore.parts import DEFAULT_PART_SIZE_BYTES, ObjectTooLargeError
from slidestream_platform.objectstore.port import (
    SHA256_METADATA_KEY,
    ObjectInfo,
    ObjectStore,
    ObjectSummary,
    StoredObject,
)
from slidestream_platform.objectstore.settings import ObjectStoreSettings

__all__ = [
    "DEFAULT_PART_SIZE_BYTES",
    "SHA256_METADATA_KEY",
    "MinioObjectStore",
    "ObjectInfo",
    "ObjectStore",
    "ObjectStoreSettings",
    "ObjectSummary",
    "ObjectTooLargeError",
    "StoredObject",
    "StreamLengthError",
]
