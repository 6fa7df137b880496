"""Secret files of the local stack that services read by path (never through the environment).

Generated once per checkout under ``.local/secrets/`` with mode 0600 and kept: the deid
pseudonym key must stay the same across restarts, or the same identifier would get a new
pseudonym (rotation is a deliberate act: a new file and a new key version).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

SECRETS_DIR_NAME = "secrets"
DEID_PSEUDONYM_KEY_NAME = "deid-pseudonym-key"
PSEUDONYM_KEY_RANDOM_BYTES = 32
"""256 bits, the HMAC-SHA256 output size (RFC 2104 §3); written hex-encoded (64 bytes)."""


def secrets_dir(local: Path) -> Path:
    return local / SECRETS_DIR_NAME


def ensure_secret_file(path: Path, random_bytes: int = PSEUDONYM_KEY_RANDOM_BYTES) -> Path:
    """Create ``path`` with a fresh random hex secret unless it exists; return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    try:
        # O_EXCL: never overwrite an existing key, even when two starts race.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(secrets.token_hex(random_bytes) + "\n")
    return path


def deid_pseudonym_key_file(local: Path) -> Path:
    """The deid service's pseudonym key file, created on first use."""
    return ensure_secret_file(secrets_dir(local) / DEID_PSEUDONYM_KEY_NAME)
