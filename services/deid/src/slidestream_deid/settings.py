"""The deid service's settings (one frozen class; the pseudonym key comes from a file).

The key file holds the HMAC secret of the pseudonyms (at least 32 bytes; a trailing newline is
ignored). Only its *path* and *version* are settings: the bytes are read by
:meth:`DeidSettings.pseudonym_key` into a :class:`~slidestream_wsi.pseudonyms.PseudonymKey`,
whose ``repr`` hides them, so they never reach an environment dump, a log line, a trace or an
event. On Kubernetes the file is a mounted Secret; locally the devstack generates it once under
``.local/secrets/``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from slidestream_platform.settings import SecretFileError, ServiceSettings, read_secret_file
from slidestream_wsi.deid import AssociatedImagePolicy, DicomDatePolicy
from slidestream_wsi.pseudonyms import MIN_KEY_BYTES, PseudonymKey

DAY_S = 24 * 3600


class PseudonymKeyError(SecretFileError):
    """The key file is missing, unreadable or too short (the message never holds key bytes)."""


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
    """Version of that key; raise it when rotating (old vault rows stay resolvable)."""

    associated_images: AssociatedImagePolicy = AssociatedImagePolicy.REMOVE
    dicom_dates: DicomDatePolicy = DicomDatePolicy.REMOVE
    work_dir: Path | None = None
    """Scratch space for the original and the output (two slide sizes); the system temp
    directory when unset."""

    def pseudonym_key(self) -> PseudonymKey:
        """The versioned key, read from :attr:`pseudonym_key_file` (raises PseudonymKeyError)."""
        try:
            secret = read_secret_file(self.pseudonym_key_file, min_bytes=MIN_KEY_BYTES)
        except SecretFileError as error:
            raise PseudonymKeyError(str(error)) from error
        return PseudonymKey(self.pseudonym_key_version, secret.get_secret_value())
