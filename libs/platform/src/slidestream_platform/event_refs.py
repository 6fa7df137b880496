"""Every object an event refers to lies under its own slide's prefix, or the event is refused.

Object keys are ``<tenant>/<slide_id>/<artefact>`` in every bucket
(:func:`slidestream_contracts.quarantine.slide_object_key`), and a consumer reads what an
event's :class:`~slidestream_contracts.events.ObjectRef` names with its own credentials, which
reach every tenant. Each consumer already checks the *bucket* (deid: ``quarantine`` only;
``download_verified``: the one bucket a step reads); this module checks the *key*, once for
every consumer: the delivery middleware calls :func:`check_message_refs` before any handler, so
an event of tenant A naming tenant B's slide (or another of A's slides) is dead-lettered
(``foreign-object-key``, :class:`~slidestream_platform.errors.ForeignObjectKeyError`) before
anything is read, written or projected. The catalogue's reindex refuses the same events.

The rule (:func:`key_problem`), for each reference found anywhere in the event (fields, tuples,
nested models, mapping values):

* the key starts with ``<event.tenant>/<event.slide_id>/`` — the event's own tenant and slide;
* below that prefix: at least one segment, no empty segment (``a//b``, a trailing ``/``), no
  ``.`` or ``..`` segment, no backslash, no control character — S3 takes keys literally, but
  anything that turns them into paths (a scratch directory, a file system store) must not be
  walked out of the slide's folder.

Exceptions: none today. Each v1 event and its producer were read for this rule:

* ``slides.uploaded.v1`` (upload): ``original`` and ``manifest`` are in ``quarantine`` under
  ``<tenant>/<slide_id>/`` — the pre-create hook names tusd's object with ``slide_object_key``
  (tusd's upload id is that key plus ``+<multipart id>``, but the event carries the key);
* ``slides.deidentified.v1`` (deid), ``slides.converted.v1`` (convert), ``slides.qc.v1`` (qc:
  its report, overlays and mask under ``<tenant>/<slide_id>/qc/``, and the converted refs it
  copies) and ``slides.inferred.v1`` (inference: ``<tenant>/<slide_id>/inference/<model>/
  <version>/``) all build keys with ``slide_object_key``;
* models in the ``models`` bucket are shared by every tenant and live outside any slide's
  prefix, which is why no event carries them as an ``ObjectRef``: ``slides.inferred.v1`` and
  ``inference.requests.v1`` name a model by ``model_name``/``model_version``. An event that must
  one day point at a shared object has to name it that way, or this rule has to be extended
  for that field explicitly.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from uuid import UUID

from pydantic import BaseModel, ValidationError

from slidestream_contracts.events import EVENT_BY_TOPIC, ObjectRef, SlideEvent
from slidestream_contracts.quarantine import slide_object_key
from slidestream_platform.errors import ForeignObjectKeyError

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def object_refs(value: object) -> Iterator[ObjectRef]:
    """Every :class:`ObjectRef` in ``value``: a model's fields, sequences, mapping values, at
    any depth."""
    if isinstance(value, ObjectRef):
        yield value
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from object_refs(getattr(value, name))
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from object_refs(item)
    elif isinstance(value, (tuple, list, set, frozenset)):
        for item in value:
            yield from object_refs(item)


def key_problem(key: str, tenant: str, slide_id: UUID) -> str | None:
    """Why ``key`` is no object of ``tenant``'s slide ``slide_id``; ``None`` when it is."""
    prefix = slide_object_key(tenant, slide_id, "")
    if not key.startswith(prefix):
        return f"is not under {prefix}"
    if "\\" in key:
        return "contains a backslash"
    if _CONTROL.search(key):
        return "contains a control character"
    for segment in key[len(prefix) :].split("/"):
        if not segment:
            return "has an empty segment below the slide's prefix"
        if segment in (".", ".."):
            return f"has a {segment!r} segment below the slide's prefix"
    return None


def check_event_refs(event: SlideEvent) -> None:
    """Raise :class:`ForeignObjectKeyError` when a reference of ``event`` breaks the rule."""
    for ref in object_refs(event):
        problem = key_problem(ref.key, event.tenant, event.slide_id)
        if problem is not None:
            # The key is an internal name (tenant slug, slide id, artefact), never patient data.
            raise ForeignObjectKeyError(f"s3://{ref.bucket}/{ref.key} {problem}")


def check_message_refs(topic: str, body: bytes) -> None:
    """The check on a consumed record, decoded with the topic's event model.

    A topic without a model, or a body that does not decode, passes: the handler's own decoding
    dead-letters it as ``invalid-event``, the one path for malformed messages.
    """
    model = EVENT_BY_TOPIC.get(topic)
    if model is None:
        return
    try:
        event = model.model_validate_json(body)
    except ValidationError:
        return
    check_event_refs(event)
