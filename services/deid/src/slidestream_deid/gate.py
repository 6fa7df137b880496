"""The residual-PHI gate over de-identified outputs (workflow step 4).

Every output is re-opened: its metadata strings are searched for the slide's identifiers, its
associated images checked against what may stay, and its bytes scanned for the identifiers and
the values de-identification removed. A patched output (TIFF-based slides, never downloaded)
exists only as the original plus patches: :meth:`ResidualPhiGate.check_streamed` builds it
chunk by chunk from one streamed GET of the original, hashing and scanning it on the way.
The rules themselves are pure functions in ``domain/verdict.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

from slidestream_contracts.events import ObjectRef
from slidestream_deid.adapters.slides import SlideTools
from slidestream_deid.domain.artefacts import artefact_name
from slidestream_deid.domain.identifiers import SlideIdentifiers, scan_tokens
from slidestream_deid.domain.verdict import (
    ByteHit,
    Finding,
    ResidualPhiVerdict,
    byte_findings,
    decide,
    image_findings,
    metadata_findings,
)
from slidestream_deid.errors import DeidPoisonError
from slidestream_deid.original import DOWNLOAD_CHUNK_BYTES
from slidestream_platform.objectstore.port import ObjectStore
from slidestream_wsi.deid import DeidResult, PatchedDeidResult
from slidestream_wsi.errors import SlideError
from slidestream_wsi.scan import stream_patched_output
from slidestream_wsi.source import SourceLike


class ResidualPhiGate:
    def __init__(self, slides: SlideTools, store: ObjectStore) -> None:
        self._slides = slides
        self._store = store

    def metadata(
        self,
        result: DeidResult,
        identifiers: SlideIdentifiers,
        *,
        series: bool,
        outputs: Sequence[SourceLike] | None = None,
    ) -> tuple[list[Finding], list[str], dict[SourceLike, str]]:
        """Findings in every output's metadata and images (by default the result's files); the
        strings kept; artefact names."""
        metadata_tokens = scan_tokens(identifiers, (), ()).metadata_tokens
        findings: list[Finding] = []
        retained: list[str] = []
        names: dict[SourceLike, str] = {}
        for output in result.outputs if outputs is None else outputs:
            name = artefact_name(result.format, output.name, series=series)
            names[output] = name
            inventory = self._slides.inventory(output)
            strings = [(s.location, s.value) for s in inventory.strings]
            retained.extend(value for _, value in strings)
            findings.extend(metadata_findings(strings, metadata_tokens, name))
            findings.extend(
                image_findings(
                    inventory.associated_images,
                    label_replaced=result.label_replaced,
                    artefact=name,
                )
            )
        return findings, retained, names

    def check(
        self, result: DeidResult, identifiers: SlideIdentifiers, *, series: bool
    ) -> ResidualPhiVerdict:
        """Re-open every output: metadata strings, associated images, and every byte."""
        try:
            findings, retained, names = self.metadata(result, identifiers, series=series)
            tokens = scan_tokens(identifiers, result.audit.scan_tokens(), retained)
            for output in result.outputs:
                hits = self._slides.scan(output, tokens.byte_tokens)
                findings.extend(
                    byte_findings(
                        ByteHit(names[output], hit.token_index, hit.offset, hit.encoding)
                        for hit in hits
                    )
                )
        except SlideError as error:
            raise DeidPoisonError(
                "the de-identified output cannot be re-opened", reason="deid-failed"
            ) from error
        return decide(findings)

    def check_streamed(
        self, ref: ObjectRef, patched: PatchedDeidResult, identifiers: SlideIdentifiers
    ) -> tuple[ResidualPhiVerdict, str]:
        """The gate of an output that exists only as the original plus patches, and its SHA-256.

        Metadata first (read through the patches), then one streamed GET of the original: its
        SHA-256 is checked against the event, and the output, built chunk by chunk, is hashed
        and byte-scanned for the gate's tokens and the library's byte post-condition
        (:attr:`PatchedDeidResult.byte_scan_tokens`) at once.
        """
        result = patched.result
        output = patched.output
        try:
            findings, retained, names = self.metadata(
                result, identifiers, series=False, outputs=(output,)
            )
        except SlideError as error:
            raise DeidPoisonError(
                "the de-identified output cannot be re-opened", reason="deid-failed"
            ) from error
        tokens = scan_tokens(identifiers, result.audit.scan_tokens(), retained)
        gate_tokens = list(tokens.byte_tokens)
        library_tokens = [t for t in patched.byte_scan_tokens if t not in gate_tokens]
        with self._store.open_stream(
            ref.bucket, ref.key, offset=0, length=ref.size_bytes
        ) as stream:
            streamed = stream_patched_output(
                iter(lambda: stream.read(DOWNLOAD_CHUNK_BYTES), b""),
                patched.source_size_bytes,
                patched.patches,
                [*gate_tokens, *library_tokens],
            )
        if streamed.input_sha256 != ref.sha256:
            raise DeidPoisonError(
                "the original's bytes do not match the event's size and sha256",
                reason="checksum-mismatch",
            )
        name = names[output]
        gate_hits = [hit for hit in streamed.hits if hit.token_index < len(gate_tokens)]
        findings.extend(
            byte_findings(
                ByteHit(name, hit.token_index, hit.offset, hit.encoding) for hit in gate_hits
            )
        )
        if len(gate_hits) < len(streamed.hits):  # a value the library removed is still there
            findings.append(Finding("library", "post-condition"))
        return decide(findings), streamed.output_sha256
