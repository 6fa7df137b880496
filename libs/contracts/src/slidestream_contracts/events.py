"""Every v1 event of the pipeline: the one place a message's shape is defined.

Rules (docs/architecture.md, "Events"):

* models are frozen and ``extra="forbid"``: an unknown field is a malformed event, not data to drop;
* events carry references (bucket, key, sha256, size), never slide bytes and never patient data —
  identifiers from manifests stay in the quarantine bucket and are referenced, not copied;
* within ``.v1`` fields may be added (with defaults), never renamed or removed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, ClassVar
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from slidestream_contracts.states import SlideState, Step
from slidestream_contracts.topics import Topic

Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
TenantId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
"""DNS-label-like tenant slug: safe in object keys, schema names and metrics labels."""
ObjectKey = Annotated[str, StringConstraints(min_length=1, max_length=1024, pattern=r"^[^/].*")]
ModelName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
"""A Triton model name: a directory name in the ``models`` bucket and a path segment."""
ReasonCode = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9:_-]{0,63}$")]
"""A short machine-readable reason (``phi-residual``, ``checksum-mismatch``)."""
ScannerModel = Annotated[
    str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")
]
"""A scanner's model as a file states it: printable (no control characters), at most 200
characters (``slidestream_wsi.pyramid.scanner`` bounds what it reads to the same)."""


def utc_now() -> datetime:
    return datetime.now(UTC)


class Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ObjectRef(Model):
    """A stored object: where it is and what it must hash to."""

    bucket: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9.-]{2,62}$")]
    key: ObjectKey
    sha256: Sha256Hex
    size_bytes: Annotated[int, Field(ge=0)]


class SlideEvent(Model):
    """Fields every slide event has. ``slide_id`` is the Kafka key and the CloudEvents subject."""

    TOPIC: ClassVar[Topic]
    CE_TYPE: ClassVar[str]

    slide_id: UUID
    tenant: TenantId
    occurred_at: AwareDatetime = Field(default_factory=utc_now)


class SlideFormat(StrEnum):
    """What the bytes are, detected from content (magic bytes), never from the file name."""

    TIFF = "tiff"
    BIGTIFF = "bigtiff"
    DICOM = "dicom"
    ZIP = "zip"


MPP_UM_MIN = 0.05
"""The finest spacing a partner may declare, µm/px: beyond the optics of any slide scanner."""
MPP_UM_MAX = 50.0
"""The coarsest, µm/px: a 0.2x overview; a larger number is a spacing in another unit."""
OBJECTIVE_POWER_MAX = 150.0


class SlideFactsV1(Model):
    """What a partner states about a slide whose file may lack it (the manifest's or ``--meta``'s
    ``mpp_um``, ``objective_power``, ``scanner``): never patient data. The file wins where it
    states a fact itself; conversion uses the declared spacing only when the file has none, and
    QC warns when both exist and differ by more than 5 %. Added in v1 as an optional field."""

    mpp_um: Annotated[float, Field(ge=MPP_UM_MIN, le=MPP_UM_MAX)] | None = None
    """Level 0's pixel spacing in µm per pixel (square pixels)."""
    objective_power: Annotated[float, Field(gt=0, le=OBJECTIVE_POWER_MAX)] | None = None
    scanner: ScannerModel | None = None


class SlideUploadedV1(SlideEvent):
    TOPIC = Topic.SLIDES_UPLOADED
    CE_TYPE = "io.slidestream.slide.uploaded.v1"

    original: ObjectRef
    """The uploaded bytes in the ``quarantine`` bucket (may hold patient data)."""
    container_format: SlideFormat
    upload_id: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    batch_id: UUID | None = None
    manifest: ObjectRef | None = None
    """The manifest row for this slide (case/specimen ids, ...), also in ``quarantine``."""
    species: str | None = None
    organ: str | None = None
    stain: str | None = None
    project: Annotated[str, StringConstraints(max_length=100)] | None = None
    """The manifest's ``project`` column: which study the slide belongs to (model routes may
    select on it). A study name, never a patient's."""
    declared: SlideFactsV1 | None = None
    """The facts the partner declared for the slide (manifest row, then ``--meta``)."""


class SlideRejectedV1(SlideEvent):
    TOPIC = Topic.SLIDES_REJECTED
    CE_TYPE = "io.slidestream.slide.rejected.v1"

    step: Step
    reason: ReasonCode
    detail: Annotated[str, StringConstraints(max_length=2000)] = ""
    """Human-readable explanation; never contains the offending values (they may be PHI)."""


class DeidAuditSummary(Model):
    """What de-identification removed: names of fields and images, never their values."""

    removed_fields: tuple[str, ...] = ()
    removed_images: tuple[str, ...] = ()
    software_version: str
    key_version: Annotated[int, Field(ge=1)]


class SlideDeidentifiedV1(SlideEvent):
    TOPIC = Topic.SLIDES_DEIDENTIFIED
    CE_TYPE = "io.slidestream.slide.deidentified.v1"

    artefacts: tuple[ObjectRef, ...] = Field(min_length=1)
    """The de-identified slide in the ``deidentified`` bucket (several objects for DICOM series)."""
    format: str
    vendor: str | None = None
    width_px: Annotated[int, Field(gt=0)]
    height_px: Annotated[int, Field(gt=0)]
    level_count: Annotated[int, Field(gt=0)]
    mpp_x: Annotated[float, Field(gt=0)] | None = None
    mpp_y: Annotated[float, Field(gt=0)] | None = None
    objective_power: Annotated[float, Field(gt=0)] | None = None
    pseudonyms: dict[str, str] = Field(default_factory=dict)
    """Role (``case``, ``specimen``, ``patient``) → keyed-HMAC pseudonym."""
    audit: DeidAuditSummary
    scanner_model: ScannerModel | None = None
    """The scanner's model as the de-identified slide states it (``GT450``, ``C13220``,
    ``Leica SCN400``); ``None`` when it states none. Added in v1 as an optional field."""
    declared: SlideFactsV1 | None = None
    """Carried from :class:`SlideUploadedV1`: conversion falls back on its spacing."""


class Compression(StrEnum):
    NONE = "none"
    JPEG = "jpeg"
    JPEG2000 = "jpeg2000"
    JPEGXL = "jpegxl"
    DEFLATE = "deflate"
    LZW = "lzw"
    WEBP = "webp"


class ConvertedLevel(Model):
    index: Annotated[int, Field(ge=0)]
    width_px: Annotated[int, Field(gt=0)]
    height_px: Annotated[int, Field(gt=0)]
    tile_size_px: Annotated[int, Field(gt=0)]
    mpp_x: Annotated[float, Field(gt=0)] | None = None
    mpp_y: Annotated[float, Field(gt=0)] | None = None
    compression: Compression
    lossless_copy: bool
    """True when compressed tiles were copied without decoding."""
    pixel_proof_sha256: Sha256Hex | None = None
    """Hash of decoded pixels of sampled tiles, equal in source and output (lossless levels)."""


class SlideConvertedV1(SlideEvent):
    TOPIC = Topic.SLIDES_CONVERTED
    CE_TYPE = "io.slidestream.slide.converted.v1"

    dicom: tuple[ObjectRef, ...] = ()
    tiff: ObjectRef | None = None
    levels: tuple[ConvertedLevel, ...] = Field(min_length=1)
    provenance: ObjectRef | None = None
    declared: SlideFactsV1 | None = None
    """Carried from :class:`SlideDeidentifiedV1`: QC compares the declared spacing with the
    file's."""
    spacing_declared: bool = False
    """Level 0's spacing is the partner's declared one: the file stated none."""


class QcVerdict(StrEnum):
    PASS = "pass"  # noqa: S105 - a verdict, not a password
    WARN = "warn"
    FAIL = "fail"


class QcMeasure(Model):
    name: str
    value: float
    unit: str
    threshold: float | None = None
    verdict: QcVerdict


class SlideQcV1(SlideEvent):
    TOPIC = Topic.SLIDES_QC
    CE_TYPE = "io.slidestream.slide.qc.v1"

    verdict: QcVerdict
    measures: tuple[QcMeasure, ...] = ()
    reasons: tuple[str, ...] = ()
    report: ObjectRef | None = None
    overlays: tuple[ObjectRef, ...] = ()
    tissue_mask: ObjectRef | None = None
    """Usable tissue (tissue less every artefact mask) as a greyscale PNG covering the whole
    slide at QC's working resolution: 255 = usable. Inference tiles over it."""
    dicom: tuple[ObjectRef, ...] = ()
    """The converted DICOM instances QC judged (``level-<i>.dcm``), so the next step reads
    the same bytes without the converted event."""
    tiff: ObjectRef | None = None
    levels: tuple[ConvertedLevel, ...] = ()
    """The converted pyramid, as ``slides.converted.v1`` described it."""


class SlideInferredV1(SlideEvent):
    TOPIC = Topic.SLIDES_INFERRED
    CE_TYPE = "io.slidestream.slide.inferred.v1"

    model_name: ModelName
    model_version: str
    outputs: tuple[ObjectRef, ...] = ()
    """Every object the run wrote (``derived/<tenant>/<slide>/inference/<model>/<version>/``)."""
    summary: dict[str, float] = Field(default_factory=dict)
    """Slide-level numbers: ``fraction:<label>``, ``mean:<label>``, ``max:<label>`` per class."""
    tile_count: Annotated[int, Field(ge=0)] = 0
    tile_mpp_um: Annotated[float, Field(gt=0)] | None = None
    """Spacing of the tiles the model saw (µm/px)."""
    scores: ObjectRef | None = None
    """``scores.npz``: per-tile outputs with their level-0 coordinates."""
    heatmaps: tuple[ObjectRef, ...] = ()
    """One PNG overlay on the thumbnail per class (``heatmap-<label>.png``)."""
    embeddings: ObjectRef | None = None
    """``embeddings.npz``: per-tile float16 embedding matrix with level-0 coordinates."""
    slide_embedding: ObjectRef | None = None
    """``slide-embedding.npy``: the mean of the tile embeddings (float32), for search."""


class InferenceRequestedV1(SlideEvent):
    """Run one model on one slide already in the repository (backfill, re-runs)."""

    TOPIC = Topic.INFERENCE_REQUESTS
    CE_TYPE = "io.slidestream.inference.requested.v1"

    model_name: ModelName
    model_version: Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]{0,8}$")]
    requested_by: Annotated[str, StringConstraints(max_length=200)] = ""
    """The token name that asked (audit; never the token)."""
    backfill_id: UUID | None = None
    """The backfill that asked, whose progress counts this slide's outcome; ``None`` for a
    request that belongs to none."""


class SlideStatusV1(SlideEvent):
    """A slide changed state. Every step publishes one; the catalogue projects them."""

    TOPIC = Topic.SLIDES_STATUS
    CE_TYPE = "io.slidestream.slide.status.v1"

    state: SlideState
    step: Step
    reason: ReasonCode | None = None
    detail: Annotated[str, StringConstraints(max_length=2000)] = ""


class SlideFixRequestedV1(SlideEvent):
    """A partner supplied what a failed slide lacked (``slidestream slides fix``): the step that
    failed runs again, once, with the facts. The producer of that step's input re-announces it
    with ``declared`` completed; ``original_sha256`` names the upload the fix is for."""

    TOPIC = Topic.SLIDES_FIXES
    CE_TYPE = "io.slidestream.slide.fix-requested.v1"

    fix_id: UUID
    step: Step
    """The step that failed and runs again."""
    reason: ReasonCode
    """Why it failed: what the fix answers (``missing-pixel-spacing``)."""
    original_sha256: Sha256Hex
    declared: SlideFactsV1


class DeadLetterRecordV1(Model):
    """What lands on ``dlq.<service>.v1``: the original message, untouched, and why it failed.

    The original value is kept base64-encoded because a poison message need not be valid JSON or
    UTF-8; replaying it means publishing ``payload_base64`` back to ``original_topic`` with
    ``original_headers``.
    """

    CE_TYPE: ClassVar[str] = "io.slidestream.dead-letter.v1"

    service: str
    original_topic: str
    original_partition: Annotated[int, Field(ge=0)]
    original_offset: Annotated[int, Field(ge=0)]
    original_key: str | None = None
    original_headers: dict[str, str] = Field(default_factory=dict)
    payload_base64: str
    error_class: str
    error_reason: ReasonCode
    error_message: Annotated[str, StringConstraints(max_length=4000)]
    attempts: Annotated[int, Field(ge=1)]
    trace_id: Annotated[str, StringConstraints(pattern=r"^([0-9a-f]{32})?$")] = ""
    slide_id: UUID | None = None
    failed_at: AwareDatetime = Field(default_factory=utc_now)


PIPELINE_EVENTS: tuple[type[SlideEvent], ...] = (
    SlideUploadedV1,
    SlideRejectedV1,
    SlideDeidentifiedV1,
    SlideConvertedV1,
    SlideQcV1,
    SlideInferredV1,
    InferenceRequestedV1,
    SlideStatusV1,
    SlideFixRequestedV1,
)

EVENT_BY_TOPIC: dict[str, type[SlideEvent]] = {
    event.TOPIC.value: event for event in PIPELINE_EVENTS
}
