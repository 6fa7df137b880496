"""What every reason code means, in words a partner can act on.

A status or rejection carries a short, stable ``reason`` code (``conformance-failed``); people
read :func:`explain`'s sentence for it: what happened, and what they can do about it. The
technical detail (exception class, tool output) stays in the dead-letter record, where operators
look; it may name internals and never reaches a partner. Every error class of the platform and
every rejection has its code here (a unit test holds the table complete).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Final


@dataclass(frozen=True, slots=True)
class ReasonText:
    summary: str
    """What happened to the slide, in one sentence without patient data or class names."""
    action: str
    """What the person who sent the slide can do about it."""


_RESEND = "Check the file opens in the scanner vendor's viewer, then upload it again."
_MODEL_FAULT = (
    "Nothing to do on your side: the model's team was alerted by the dead-letter record; the "
    "slide is analysed again once the model is fixed. Quote the slide id if you contact support."
)
_PLATFORM_FAULT = (
    "Nothing to do on your side: the operators were alerted by the dead-letter record and will "
    "process the slide again once it is fixed. Quote the slide id if you contact support."
)
_RETRY_LATER = (
    "Nothing to do on your side: the platform retries on its own; if the state does not change "
    "within the hour, contact support with the slide id."
)

REASONS: Final = MappingProxyType(
    {
        # Upload: what the partner sent.
        "unsupported-format": ReasonText(
            "The file is not a slide format the platform reads (TIFF-based, DICOM WSI or a zip "
            "of a DICOM series).",
            "Export the slide from the scanner software as SVS, NDPI, Philips TIFF, OME-TIFF, "
            "pyramidal TIFF or DICOM WSI, then upload it again.",
        ),
        "checksum-mismatch": ReasonText(
            "The bytes received do not match the sha256 declared for the file.",
            "Compute the sha256 again (the CLI does it for you), check the manifest row, and "
            "upload the file again.",
        ),
        "invalid-slide-facts": ReasonText(
            "A slide fact given with the upload (mpp_um, objective_power, scanner) is not "
            "acceptable: the message names the field and why (a unit other than µm, a number "
            "out of range).",
            "Give the spacing in µm per pixel (e.g. --meta mpp_um=0.25 or the manifest's mpp_um "
            "column), the magnification as 20 or 40x, and upload again.",
        ),
        "checksum-required": ReasonText(
            "The upload did not declare the file's sha256, which the platform checks the "
            "received bytes against.",
            "Upload with the slidestream CLI (it declares it), or send the sha256 as the "
            "'sha256' entry of Upload-Metadata (64 lowercase hex digits).",
        ),
        "empty-archive": ReasonText(
            "The zip archive holds no files.", "Zip the DICOM series' files and upload it again."
        ),
        "archive-too-many-members": ReasonText(
            "The zip archive holds more files than one slide's series can.",
            "Upload one slide per zip: the instances of a single DICOM WSI series.",
        ),
        "archive-directory-too-large": ReasonText(
            "The zip archive's table of contents is larger than any slide's series needs (too "
            "many files, or very long names).",
            "Upload one slide per zip: the instances of a single DICOM WSI series, under short "
            "names.",
        ),
        "archive-path-traversal": ReasonText(
            "The zip archive names a file outside the archive (an absolute path or '..').",
            "Create the zip again from the series' folder, without absolute paths.",
        ),
        "archive-symlink": ReasonText(
            "The zip archive contains a symbolic link.",
            "Create the zip again from the files themselves, not links to them.",
        ),
        "archive-bomb": ReasonText(
            "The zip archive expands far beyond any slide's size.",
            "Zip the DICOM series' files with ordinary compression and upload it again.",
        ),
        "corrupt-archive": ReasonText(
            "The zip archive's table of contents cannot be read (the file is damaged or cut "
            "short).",
            "Create the zip again and upload it again.",
        ),
        "upload-verification-failed": ReasonText(
            "The platform could not check the uploaded file: every attempt failed, so it was "
            "refused and removed.",
            "Upload the file again; if it is refused the same way, contact support with the "
            "slide id.",
        ),
        "object-too-large": ReasonText(
            "The file is larger than this installation accepts.",
            "Ask the operators about the size limit, or split a multi-slide file into slides.",
        ),
        "stream-length-mismatch": ReasonText(
            "The upload ended with fewer or more bytes than announced.",
            "Upload the file again; the CLI resumes where the transfer stopped.",
        ),
        "expired": ReasonText(
            "The upload was not finished in time and was removed.",
            "Upload the file again; keep the CLI running until it reports the slide uploaded.",
        ),
        "terminated": ReasonText(
            "The upload was cancelled before it finished.", "Upload the file again if needed."
        ),
        # The slide itself.
        "invalid-slide": ReasonText("The file could not be read as a slide.", _RESEND),
        "slide-bomb": ReasonText(
            "The slide declares sizes beyond the platform's safety limits (a decompression bomb "
            "or a damaged header).",
            _RESEND,
        ),
        "truncated-slide": ReasonText(
            "The slide file ends early: part of it is missing.",
            "Upload the complete file again (compare its size with the original).",
        ),
        "corrupt-slide": ReasonText(
            "The slide file is damaged or contradicts itself (for example its levels or tiles "
            "do not match what its metadata declares).",
            "Export the slide from the scanner software again and upload the new file.",
        ),
        "unsafe-archive": ReasonText(
            "The archive inside the upload is unsafe to unpack.",
            "Zip the DICOM series' files again, plainly, and upload the new zip.",
        ),
        "missing-pixel-spacing": ReasonText(
            "The slide does not say its pixel size (microns per pixel), which DICOM requires.",
            "State its spacing once: `slidestream slides fix SLIDE --mpp-um 0.25` runs the "
            "conversion again (or upload it again with --meta mpp_um=0.25).",
        ),
        # De-identification.
        "fix-without-decision": ReasonText(
            "A fix named a slide that de-identification did not pass, so there is nothing to "
            "run again with it.",
            "Check the slide id; a slide rejected before conversion is uploaded again instead.",
        ),
        "invalid-manifest": ReasonText(
            "The manifest row for this slide could not be read.",
            "Check the row (filename, sha256 and the identifier columns) against the manifest "
            "format in the CLI's help, then upload the slide again with the corrected manifest.",
        ),
        "phi-residual": ReasonText(
            "Identifying information was still found after de-identification, so the slide was "
            "kept in quarantine.",
            "Check the slide's label and metadata fields for names or numbers the scanner "
            "copied there; remove them or ask the operators to extend the rules, then upload "
            "it again.",
        ),
        "deid-failed": ReasonText(
            "De-identification could not be completed for this slide.", _PLATFORM_FAULT
        ),
        # Conversion and QC.
        "conformance-failed": ReasonText(
            "The converted slide did not pass the platform's DICOM and TIFF conformance check.",
            _PLATFORM_FAULT,
        ),
        "qc-no-level": ReasonText(
            "The slide has no resolution level that quality control can read.", _RESEND
        ),
        "qc-warn": ReasonText(
            "Quality control passed the slide with warnings (see the measures listed).",
            "Nothing required; rescan the slide if the warnings matter for your study.",
        ),
        "qc-fail": ReasonText(
            "Quality control judged the slide unusable (see the measures listed).",
            "Rescan the slide (check focus, pen marks and folds) and upload the new scan.",
        ),
        # The platform's own faults.
        "transient": ReasonText(
            "A platform service was briefly unavailable while processing the slide.",
            _RETRY_LATER,
        ),
        # Inference: the models a tenant routed, on Triton.
        "model-output-shape": ReasonText(
            "A model answered with outputs of another shape or type than its model card declares.",
            _MODEL_FAULT,
        ),
        "model-output-values": ReasonText(
            "A model answered with values that are not numbers (NaN or infinite).", _MODEL_FAULT
        ),
        "model-input-rejected": ReasonText(
            "The inference server refused the tiles its model's card asks for.", _MODEL_FAULT
        ),
        "invalid-model-card": ReasonText(
            "A routed model's card in the model repository could not be read.", _MODEL_FAULT
        ),
        "model-card-missing": ReasonText(
            "A routed model version has no card in the model repository.", _MODEL_FAULT
        ),
        "model-not-ready": ReasonText(
            "A routed model is not loaded on the inference server.", _MODEL_FAULT
        ),
        "triton-request-failed": ReasonText(
            "The inference server kept failing the model's requests for this slide.", _MODEL_FAULT
        ),
        "triton-unavailable": ReasonText(
            "The inference server did not answer; the slide waits for it.", _PLATFORM_FAULT
        ),
        "dependency-down": ReasonText(
            "A server the platform needs did not answer; the slide waits for it.", _PLATFORM_FAULT
        ),
        "scratch-full": ReasonText(
            "The platform's working space is full for now; the slide waits for space.",
            _RETRY_LATER,
        ),
        "scratch-too-small": ReasonText(
            "The slide needs more working space than the platform has for one slide.",
            _PLATFORM_FAULT,
        ),
        "crash-loop": ReasonText(
            "Processing this slide stopped the platform's service several times (out of memory "
            "or a crash), so it was set aside.",
            _PLATFORM_FAULT,
        ),
        "slide-not-qc-checked": ReasonText(
            "A model run was requested for a slide that has not been through QC.",
            "Request it again once the slide's state is qc_passed or qc_warned.",
        ),
        "qc-incomplete": ReasonText(
            "QC's result for the slide lacks what inference reads (tissue mask, levels).",
            _PLATFORM_FAULT,
        ),
        "invalid-tissue-mask": ReasonText(
            "QC's tissue mask for the slide could not be read.", _PLATFORM_FAULT
        ),
        "level-missing": ReasonText(
            "The converted level a model needs is missing from the slide's DICOM files.",
            _PLATFORM_FAULT,
        ),
        "access-denied": ReasonText(
            "A platform service was refused access to the slide's storage.", _PLATFORM_FAULT
        ),
        "object-not-found": ReasonText(
            "A file the platform stored for this slide was missing when it was needed.",
            _PLATFORM_FAULT,
        ),
        "invalid-event": ReasonText(
            "A platform service received a malformed message about this slide.", _PLATFORM_FAULT
        ),
        "foreign-object-key": ReasonText(
            "A platform service received a message naming a stored file outside this slide's "
            "own folder, so the message was set aside unprocessed.",
            _PLATFORM_FAULT,
        ),
        "query-timeout": ReasonText(
            "A catalogue search ran past its time limit and was stopped; narrow the filters or "
            "try again.",
            _PLATFORM_FAULT,
        ),
        "poison": ReasonText("A platform service could not process this slide.", _PLATFORM_FAULT),
        "unhandled-error": ReasonText(
            "A platform service kept failing on this slide.", _PLATFORM_FAULT
        ),
        "error": ReasonText(
            "A platform service failed while processing this slide.", _PLATFORM_FAULT
        ),
    }
)
"""Reason code -> its words (codes match ``ReasonCode``'s pattern)."""

UNKNOWN_REASON: Final = ReasonText(
    "The slide could not be processed.",
    "Contact support with the slide id; the operators have the details.",
)


def explain(reason: str | None) -> ReasonText | None:
    """The words for ``reason`` (:data:`UNKNOWN_REASON` for a code this version does not know),
    ``None`` without a reason."""
    if not reason:
        return None
    return REASONS.get(reason, UNKNOWN_REASON)
