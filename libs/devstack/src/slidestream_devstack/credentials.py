"""Secrets of the local stack, generated once per checkout and kept in ``.local/credentials.json``.

They are stable across restarts because the data directories (MinIO's, Postgres's) remember them.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, fields
from pathlib import Path

_TOKEN_BYTES = 20


@dataclass(frozen=True, slots=True)
class Credentials:
    minio_root_user: str
    minio_root_password: str
    seaweedfs_access_key: str
    seaweedfs_secret_key: str
    postgres_password: str

    @classmethod
    def generate(cls) -> Credentials:
        # Hex only: safe unescaped in URLs, env files and JSON.
        return cls(
            minio_root_user=f"slidestream-{secrets.token_hex(4)}",
            minio_root_password=secrets.token_hex(_TOKEN_BYTES),
            seaweedfs_access_key=secrets.token_hex(10).upper(),
            seaweedfs_secret_key=secrets.token_hex(_TOKEN_BYTES),
            postgres_password=secrets.token_hex(_TOKEN_BYTES),
        )


def load_or_create_credentials(path: Path) -> Credentials:
    stored: dict[str, str] = {}
    if path.exists():
        stored = {
            str(key): str(value) for key, value in json.loads(path.read_text("utf-8")).items()
        }
    names = [field.name for field in fields(Credentials)]
    if all(name in stored for name in names):
        return Credentials(**{name: stored[name] for name in names})
    # Keep every secret already issued (data directories remember them); fill in only new ones.
    generated = asdict(Credentials.generate())
    credentials = Credentials(**{name: stored.get(name, generated[name]) for name in names})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(credentials), indent=2) + "\n", encoding="utf-8")
    path.chmod(0o600)
    return credentials
