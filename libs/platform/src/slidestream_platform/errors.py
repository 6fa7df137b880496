"""The one error hierarchy of slidestream.

A handler raises; it never acknowledges by hand. The delivery middleware
(:mod:`slidestream_platform.delivery`) maps the class of what was raised to what happens to the
message:

===================  ==========================================  ===============================
class                meaning                                     delivery outcome
===================  ==========================================  ===============================
DependencyDownError  a server the work needs does not answer     redelivered with capped backoff
                     (and, found by the middleware, S3, the      for as long as it lasts, never
                     database or Kafka unreachable; a full       dead-lettered; ``/readyz``
                     scratch volume)                             names the dependency meanwhile
RetryableError       transient: a 5xx answer, a changed object,  retried with backoff; after the
                     a peer restarting                           last attempt, dead-lettered
PoisonError          this input can never succeed (malformed     dead-lettered at once, slide
                     event, corrupt slide, unsupported format,   status ``failed:<step>``
                     a message that keeps killing the process)
AccessError          credentials or permissions are wrong;       dead-lettered at once and logged
                     retrying the same message cannot help       at error level for operators
anything else        a bug                                       treated as retryable: the offset
                                                                 is not committed until the
                                                                 retries run out
===================  ==========================================  ===============================

A library's connection failure (``sqlalchemy``'s ``OperationalError``, ``aiokafka``'s
``KafkaConnectionError``, an unreachable object store) needs no wrapping by the code that met
it: the middleware finds it in the exception's chain (:mod:`slidestream_platform.outages`).
"""

from __future__ import annotations


class SlidestreamError(Exception):
    """Root of every error slidestream raises on purpose."""

    #: Short machine-readable reason, carried into dead-letter records and rejection events.
    reason: str = "error"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class RetryableError(SlidestreamError):
    """A transient fault: the same message may succeed later."""

    reason = "transient"


class DependencyDownError(RetryableError):
    """A server the work needs (an inference server, say) does not answer at all: the message
    waits, redelivered with the longest backoff for as long as it takes, and is never
    dead-lettered. A slide is not broken because a server restarted; the partition stalls
    (backpressure) until the server is back, which the retries metric shows and ``/readyz``
    reports under :attr:`dependency`."""

    reason = "dependency-down"
    #: The readiness name of what is down (``triton``, ``object_store``, ``scratch``...).
    dependency: str = "dependency"

    def __init__(
        self, message: str, *, reason: str | None = None, dependency: str | None = None
    ) -> None:
        super().__init__(message, reason=reason)
        if dependency is not None:
            self.dependency = dependency


class ScratchSpaceError(DependencyDownError):
    """The scratch volume has too little free space for the work right now (other work's files,
    leftovers): the message waits until space is freed or the volume grows."""

    reason = "scratch-full"
    dependency = "scratch"


class ScratchTooSmallError(RetryableError):
    """The work needs more than the whole scratch volume holds: no wait frees that much, so it
    is retried a few times and dead-lettered with this reason (replay it after enlarging the
    volume, ``WORK_DIR``)."""

    reason = "scratch-too-small"


class PoisonError(SlidestreamError):
    """This input can never succeed; retrying it only blocks its partition."""

    reason = "poison"


class AccessError(SlidestreamError):
    """Credentials or permissions are wrong: an operator must act, retrying cannot help."""

    reason = "access-denied"


class CrashLoopError(PoisonError):
    """Deliveries of this message kept ending with the process (killed for memory, a crash in a
    native library) before any outcome: it is dead-lettered before it is handled again."""

    reason = "crash-loop"


class ObjectNotFoundError(PoisonError):
    """An event referenced an object that does not exist."""

    reason = "object-not-found"


class InvalidEventError(PoisonError):
    """A message could not be decoded into its event model (malformed JSON, unknown fields), or
    it refers to something its consumer may not touch (an object outside its input bucket)."""

    reason = "invalid-event"


class ForeignObjectKeyError(InvalidEventError):
    """An event refers to an object outside its own slide's ``<tenant>/<slide_id>/`` prefix
    (:mod:`slidestream_platform.event_refs`): a forged or broken event, never worked on."""

    reason = "foreign-object-key"


class ChecksumMismatchError(PoisonError):
    """An object's bytes do not match the size and sha256 the event announced."""

    reason = "checksum-mismatch"
