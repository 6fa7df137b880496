"""Every loopback port of the local stack, in one place so that no two parts clash.

Ports are off the products' defaults so that a developer's own Kafka/MinIO/Postgres keep working.
"""

from __future__ import annotations

from typing import Final

LOOPBACK: Final = "127.0.0.1"

KAFKA_BROKER_PORT: Final = 19092
KAFKA_CONTROLLER_PORT: Final = 19093

MINIO_API_PORT: Final = 19000
MINIO_CONSOLE_PORT: Final = 19001

SEAWEEDFS_S3_PORT: Final = 18333
SEAWEEDFS_MASTER_PORT: Final = 19333
SEAWEEDFS_VOLUME_PORT: Final = 19340
SEAWEEDFS_FILER_PORT: Final = 18888
SEAWEEDFS_ADMIN_PORT: Final = 23647
# weed derives gRPC ports as HTTP port + 10000 unless told; we name them so nothing else collides.
SEAWEEDFS_MASTER_GRPC_PORT: Final = 29333
SEAWEEDFS_VOLUME_GRPC_PORT: Final = 29340
SEAWEEDFS_FILER_GRPC_PORT: Final = 28888
SEAWEEDFS_S3_GRPC_PORT: Final = 28333

POSTGRES_PORT: Final = 15432

TRITON_HTTP_PORT: Final = 18000
TRITON_GRPC_PORT: Final = 18001
TRITON_METRICS_PORT: Final = 18002

TUSD_PORT: Final = 11080

MILVUS_PORT: Final = 19530

# slidestream's own services (HTTP: API, health, metrics).
UPLOAD_PORT: Final = 8090
CATALOG_PORT: Final = 8091
DEID_PORT: Final = 8092
CONVERT_PORT: Final = 8093
QC_PORT: Final = 8094
INFERENCE_PORT: Final = 8095
UPLOAD_HOOKS_PORT: Final = 8190
"""The upload service's internal listener: tusd's hooks only, never the partner API's port."""
