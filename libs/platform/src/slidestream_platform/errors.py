"""The one error hierarchy of slidestream.

A handler raises; it never acknowledges by hand. The delivery middleware
(:mod:`slidestream_platform.delivery`) maps the class of what was raised to what happens to the
message:

================  =============================================  ===============================
class             meaning                                        delivery outcome
================  =============================================  ===============================
RetryableError    transient: network, 5xx, timeouts, a peer      retried with backoff; after the
                  restarting                                     last attempt, dead-lettered
PoisonError       this input can never succeed (malformed        dead-lettered at once, slide
                  event, corrupt slide, unsupported format)      status ``failed:<step>``
AccessError       credentials or permissions are wrong; retrying dead-lettered at once and logged
                  the same message cannot help                   at error level for operators
anything else     a bug                                          treated as retryable: the offset
                                                                 is not committed until the
                                                                 retries run out
================  =============================================  ===============================
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
    (backpressure) until the server is back, which the retries metric shows."""

    reason = "dependency-down"


class PoisonError(SlidestreamError):
    """This input can never succeed; retrying it only blocks its partition."""

    reason = "poison"


class AccessError(SlidestreamError):
    """Credentials or permissions are wrong: an operator must act, retrying cannot help."""

    reason = "access-denied"


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
