"""The ``models`` bucket, Triton's repository layout: which model versions exist, and writing one.

A version exists iff ``<name>/<version>/card.json`` exists. A push writes the card last, so a
push that dies part-way leaves no version (its files are overwritten by the next push of the
same version), and versions are never rewritten once their card is there.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping

from slidestream_contracts.model_card import ModelCardV1
from slidestream_platform.objectstore.port import ObjectStore

CARD_FILE = "card.json"
JSON_CONTENT_TYPE = "application/json"
BINARY_CONTENT_TYPE = "application/octet-stream"
_CARD_KEY = re.compile(r"^(?P<name>[^/]+)/(?P<version>[1-9][0-9]*)/card\.json$")

Versions = dict[str, ModelCardV1]
"""A model's cards by version, oldest version first."""


def card_key(name: str, version: str) -> str:
    return f"{name}/{version}/{CARD_FILE}"


class ModelBucket:
    def __init__(self, store: ObjectStore, bucket: str) -> None:
        self._store = store
        self._bucket = bucket

    def has_version(self, name: str, version: str) -> bool:
        return self._store.stat(self._bucket, card_key(name, version)) is not None

    def _card(self, key: str) -> ModelCardV1:
        with self._store.open_stream(self._bucket, key) as stream:
            return ModelCardV1.model_validate_json(stream.read())

    def _cards(self, prefix: str) -> dict[str, Versions]:
        found: dict[str, Versions] = {}
        for summary in self._store.list(self._bucket, prefix):
            match = _CARD_KEY.match(summary.key)
            if match is not None:
                found.setdefault(match["name"], {})[match["version"]] = self._card(summary.key)
        return {
            name: dict(sorted(versions.items(), key=lambda item: int(item[0])))
            for name, versions in sorted(found.items())
        }

    def versions(self, name: str) -> Versions:
        """The cards of ``name``'s versions (empty: no such model)."""
        return self._cards(f"{name}/").get(name, {})

    def models(self) -> dict[str, Versions]:
        """Every model that has a version, by name."""
        return self._cards("")

    def write(self, files: Mapping[str, bytes], card: str) -> list[str]:
        """Upload ``files`` (keys relative to the bucket), the one under ``card`` last; the keys
        written, in order."""
        order = [key for key in files if key != card] + [card]
        for key in order:
            data = files[key]
            content_type = JSON_CONTENT_TYPE if key.endswith(".json") else BINARY_CONTENT_TYPE
            self._store.put_stream(
                self._bucket, key, io.BytesIO(data), len(data), content_type=content_type
            )
        return order
