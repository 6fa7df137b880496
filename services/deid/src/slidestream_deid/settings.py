"""The deid service's settings (one frozen class; its two keys come from files).

The pseudonym key file holds the HMAC secret of the pseudonyms, the vault key file the secret
the vault's original identifiers are encrypted under (each at least 32 bytes; a trailing newline
is ignored; never the same bytes). Only their *paths* and *versions* are settings: the bytes are
read by :meth:`DeidSettings.pseudonym_key` and :meth:`DeidSettings.vault_keys` into objects
whose ``repr`` hides them, so they never reach an environment dump, a log line, a trace or an
event. On Kubernetes the files are mounted Secrets; locally the devstack generates them once
under ``.local/secrets/``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretBytes

from slidestream_deid.domain.keys import VaultKeys
from slidestream_platform.settings import SecretFileError, ServiceSettings, read_secret_file
from slidestream_wsi.deid import AssociatedImagePolicy, DicomDatePolicy
from slidestream_wsi.pseudonyms import MIN_KEY_BYTES, PseudonymKey

DAY_S = 24 * 3600


class KeyFileError(SecretFileError):
    """A key file is missing, unreadable or too short (the message never holds key bytes)."""


def _read_key(path: Path) -> SecretBytes:
    try:
        return read_secret_file(path, min_bytes=MIN_KEY_BYTES)
    except SecretFileError as error:
        raise KeyFileError(str(error)) from error


class DeidSettings(ServiceSettings):
    service_name: str = "deid"
    http_port: int = 8092
    kafka_max_poll_interval_s: float = Field(default=1800.0, gt=0)
    """A multi-gigabyte slide is downloaded, rewritten, scanned and uploaded inside one
    delivery; the group must not evict the consumer meanwhile."""

    quarantine_bucket: str = "quarantine"
    deidentified_bucket: str = "deidentified"
    quarantine_retention_s: float = Field(default=7 * DAY_S, ge=0)
    """How long an original stays in quarantine after deid has decided on it (for operators to
    investigate a rejection or replay a dead letter); then it is deleted."""
    retention_sweep_interval_s: float = Field(default=300.0, gt=0)
    """How often originals past their retention are looked for."""

    pseudonym_key_file: Path
    """File holding the HMAC secret of the pseudonyms (mounted Secret)."""
    pseudonym_key_version: int = Field(default=1, ge=1)
    """Version of that key; raise it when rotating (old vault rows stay resolvable). The first
    start with a version records the key's fingerprint; a start with other bytes under a
    recorded version is refused."""

    vault_key_file: Path
    """File holding the secret the vault's original identifiers are encrypted under (AES-256-GCM;
    a mounted Secret of its own, never the pseudonym key)."""
    vault_key_id: int = Field(default=1, ge=1)
    """Id of that key, stored with every vault row it encrypts; raise it when rotating."""
    vault_retired_key_files: dict[int, Path] = Field(default_factory=dict)
    """Earlier vault keys by id (JSON, ``{"1": "/path"}``): rows still encrypted under them stay
    readable, and each start re-encrypts them under the current key."""

    associated_images: AssociatedImagePolicy = AssociatedImagePolicy.REMOVE
    dicom_dates: DicomDatePolicy = DicomDatePolicy.REMOVE
    work_dir: Path | None = None
    """Scratch space for the original and the output (two slide sizes); the system temp
    directory when unset."""

    def pseudonym_key(self) -> PseudonymKey:
        """The versioned key, read from :attr:`pseudonym_key_file` (raises KeyFileError)."""
        secret = _read_key(self.pseudonym_key_file)
        return PseudonymKey(self.pseudonym_key_version, secret.get_secret_value())

    def vault_keys(self) -> VaultKeys:
        """The current vault key and the retired ones, read from their files (raises
        KeyFileError)."""
        files = {**self.vault_retired_key_files, self.vault_key_id: self.vault_key_file}
        secrets = {key_id: _read_key(path).get_secret_value() for key_id, path in files.items()}
        return VaultKeys(self.vault_key_id, secrets)
