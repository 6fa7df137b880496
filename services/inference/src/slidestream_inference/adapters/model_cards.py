"""The model registry as inference reads it: a version's card from the ``models`` bucket
(``<name>/<version>/card.json``, written last by a push: a version exists iff its card does)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol

from pydantic import ValidationError

from slidestream_contracts.model_card import ModelCardV1
from slidestream_platform.errors import ObjectNotFoundError, PoisonError
from slidestream_platform.objectstore.port import ObjectStore

CARD_NAME = "card.json"
CARD_MAX_BYTES = 1024 * 1024
"""A card is a few kilobytes; a larger object is not one."""


class InvalidModelCardError(PoisonError):
    reason = "invalid-model-card"


@dataclass(frozen=True, slots=True)
class StoredCard:
    card: ModelCardV1
    sha256: str
    """Of the stored ``card.json`` bytes: part of every run's input digest."""


class ModelCards(Protocol):
    def card(self, name: str, version: str) -> StoredCard | None:
        """The card of ``name`` version ``version``; ``None`` when that version does not exist."""
        ...


def card_key(name: str, version: str) -> str:
    return f"{name}/{version}/{CARD_NAME}"


class StoreModelCards:
    def __init__(self, store: ObjectStore, bucket: str) -> None:
        self._store = store
        self._bucket = bucket

    def card(self, name: str, version: str) -> StoredCard | None:
        try:
            with self._store.open_stream(self._bucket, card_key(name, version)) as stream:
                data = stream.read(CARD_MAX_BYTES + 1)
        except ObjectNotFoundError:
            return None
        return parse_card(data, name, version)


def parse_card(data: bytes, name: str, version: str) -> StoredCard:
    """A stored card, checked against where it is stored (a push validated it already)."""
    if len(data) > CARD_MAX_BYTES:
        raise InvalidModelCardError(f"{card_key(name, version)}: over {CARD_MAX_BYTES} bytes")
    try:
        card = ModelCardV1.model_validate_json(data)
    except ValidationError as error:
        raise InvalidModelCardError(f"{card_key(name, version)}: {error}") from error
    if (card.name, card.version) != (name, version):
        raise InvalidModelCardError(
            f"{card_key(name, version)} describes {card.name} version {card.version}"
        )
    return StoredCard(card, hashlib.sha256(data).hexdigest())
