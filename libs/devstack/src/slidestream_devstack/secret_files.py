"""Secret files of the local stack that services read by path (never through the environment).

Generated once per checkout under ``.local/secrets/`` with mode 0600 and kept: the deid
pseudonym key must stay the same across restarts, or the same identifier would get a new
pseudonym (rotation is a deliberate act: a new file and a new key version; deid refuses to
start on other bytes under a recorded version); the deid vault key, a separate secret that
encrypts the vault's original identifiers, must stay too, or the vault could not be read; the
models API tokens (the developer's, and the catalog's ``models:embed`` one) stay valid for the
demo and the tests across restarts; the tusd hooks secret is shared by tusd (in its hook URL)
and the upload service (by path), which must agree across restarts of either.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from slidestream_contracts.tokens import token_sha256

SECRETS_DIR_NAME = "secrets"
DEID_PSEUDONYM_KEY_NAME = "deid-pseudonym-key"
DEID_VAULT_KEY_NAME = "deid-vault-key"
PSEUDONYM_KEY_RANDOM_BYTES = 32
"""256 bits, the HMAC-SHA256 output size (RFC 2104 §3); written hex-encoded (64 bytes)."""
VAULT_KEY_RANDOM_BYTES = 32
"""256 bits, an AES-256 key's strength (deid derives the AES key from the file with HKDF)."""

MODELS_TOKEN_NAME: Final = "models-token"  # noqa: S105 - a file name, not a secret
"""The plain bearer token of the models API (stack.env names its path: ``MODELS_TOKEN_FILE``)."""
INFERENCE_API_TOKENS_NAME: Final = "inference-api-tokens.json"
"""What the inference service reads (``API_TOKENS_FILE``): hashes and scopes, never a token."""
API_TOKEN_PREFIX: Final = "ssk_"  # noqa: S105 - a public prefix, not a secret
"""The platform's token prefix (as the upload service's partner tokens): leaks are recognisable."""
API_TOKEN_RANDOM_BYTES: Final = 32
"""256 bits of randomness, written hex-encoded after the prefix."""
DEV_TOKEN_NAME: Final = "devstack"  # noqa: S105 - the entry's label, not a secret
DEV_TOKEN_SCOPES: Final[tuple[str, ...]] = ("models:read", "models:write")
EMBED_TOKEN_NAME: Final = "embed-token"  # noqa: S105 - a file name, not a secret
"""The catalog's bearer token for embedding image patches (its ``EMBED_TOKEN_FILE``)."""
CATALOG_TOKEN_NAME: Final = "catalog"  # noqa: S105 - the entry's label, not a secret
CATALOG_TOKEN_SCOPES: Final[tuple[str, ...]] = ("models:embed",)
"""Similarity search by patch only: the catalog can neither read nor change the models."""
TUSD_HOOKS_SECRET_NAME: Final = "tusd-hooks-secret"  # noqa: S105 - a file name, not a secret
"""What tusd authenticates its hooks with (the upload service's ``TUSD_HOOKS_SECRET_FILE``)."""


def secrets_dir(local: Path) -> Path:
    return local / SECRETS_DIR_NAME


def ensure_secret_file(
    path: Path, random_bytes: int = PSEUDONYM_KEY_RANDOM_BYTES, *, prefix: str = ""
) -> Path:
    """Create ``path`` with ``prefix`` and a fresh random hex secret unless it exists; return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    try:
        # O_EXCL: never overwrite an existing key, even when two starts race.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(prefix + secrets.token_hex(random_bytes) + "\n")
    return path


def read_secret(path: Path) -> str:
    """A secret file's value, without the trailing newline."""
    return path.read_text(encoding="ascii").strip()


def deid_pseudonym_key_file(local: Path) -> Path:
    """The deid service's pseudonym key file, created on first use."""
    return ensure_secret_file(secrets_dir(local) / DEID_PSEUDONYM_KEY_NAME)


def deid_vault_key_file(local: Path) -> Path:
    """The deid service's vault key file (never the pseudonym key), created on first use."""
    return ensure_secret_file(secrets_dir(local) / DEID_VAULT_KEY_NAME, VAULT_KEY_RANDOM_BYTES)


def models_token_file(local: Path) -> Path:
    """The local stack's models API token (``ssk_`` + 64 hex digits), created on first use."""
    return ensure_secret_file(
        secrets_dir(local) / MODELS_TOKEN_NAME, API_TOKEN_RANDOM_BYTES, prefix=API_TOKEN_PREFIX
    )


def embed_token_file(local: Path) -> Path:
    """The catalog's ``models:embed`` token (``ssk_`` + 64 hex digits), created on first use."""
    return ensure_secret_file(
        secrets_dir(local) / EMBED_TOKEN_NAME, API_TOKEN_RANDOM_BYTES, prefix=API_TOKEN_PREFIX
    )


def tusd_hooks_secret_file(local: Path) -> Path:
    """The secret tusd sends with its hooks (64 hex digits), created on first use."""
    return ensure_secret_file(secrets_dir(local) / TUSD_HOOKS_SECRET_NAME)


def api_token_entry(name: str, token: str, scopes: Sequence[str]) -> dict[str, object]:
    """One entry of an API tokens file: the SHA-256 (hex) of the whole bearer token's ASCII."""
    return {
        "name": name,
        "sha256": token_sha256(token),
        "scopes": list(scopes),
    }


def inference_api_tokens_file(local: Path) -> Path:
    """The inference service's tokens file, derived from the models token and the catalog's
    embed token (rewritten if stale)."""
    entries = [
        api_token_entry(DEV_TOKEN_NAME, read_secret(models_token_file(local)), DEV_TOKEN_SCOPES),
        api_token_entry(
            CATALOG_TOKEN_NAME, read_secret(embed_token_file(local)), CATALOG_TOKEN_SCOPES
        ),
    ]
    path = secrets_dir(local) / INFERENCE_API_TOKENS_NAME
    text = json.dumps(entries, indent=2) + "\n"
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return path
    temporary = path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    # Atomic: a service starting now reads the old file or the new one, never half of it.
    temporary.replace(path)
    return path
