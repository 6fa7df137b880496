"""Support for the inference tests: a converted slide with known pixels, its QC event in a
memory store, model cards, and a fake Triton that runs a NumPy "model" on each request."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from uuid import UUID, uuid4

import cv2
import numpy as np
import numpy.typing as npt
import tifffile

from slidestream_contracts.events import (
    Compression,
    ConvertedLevel,
    ObjectRef,
    QcVerdict,
    SlideQcV1,
)
from slidestream_contracts.model_card import ModelCardV1
from slidestream_wsi.convert import ConversionOptions, DicomIdentity, convert_slide
from tests.support.fakes import MemoryStore

STRIPED_SIZE_PX = (2048, 1536)
STRIPED_MPP_UM = 0.5
STRIPE_WIDTH_PX = 256
"""Level-0 width of one grey stripe: one tile at 1 µm/px and 128 px tiles."""


def stripe_grey(column: int) -> int:
    """The grey level of level-0 stripe ``column`` (dark on the left, light on the right)."""
    return 20 + 30 * column


def striped_rgb() -> npt.NDArray[np.uint8]:
    width, height = STRIPED_SIZE_PX
    columns = np.arange(width) // STRIPE_WIDTH_PX
    row = np.array([stripe_grey(int(c)) for c in columns], np.uint8)
    return np.ascontiguousarray(np.broadcast_to(row[None, :, None], (height, width, 3)))


@dataclass(frozen=True)
class ConvertedSlide:
    """A slide as convert leaves it: ``level-<i>.dcm`` files, the pyramidal TIFF and their
    level list."""

    files: tuple[Path, ...]
    levels: tuple[ConvertedLevel, ...]
    tiff: Path | None = None


def convert_striped(directory: Path) -> ConvertedSlide:
    """Grey stripes, written as a 3-level JPEG TIFF and converted to DICOM levels."""
    source = directory / "striped.tif"
    level0 = striped_rgb()
    with tifffile.TiffWriter(source) as tif:
        for index, factor in enumerate((1, 2, 4)):
            tif.write(
                np.ascontiguousarray(level0[::factor, ::factor]),
                photometric="rgb",
                tile=(256, 256),
                compression="jpeg",
                compressionargs={"level": 95},
                subfiletype=0 if index == 0 else 1,
                resolution=(1e4 / (STRIPED_MPP_UM * factor),) * 2,
                resolutionunit="CENTIMETER",
                metadata=None,
            )
    return convert_to_levels(source, directory / "out", "striped")


def convert_to_levels(source: Path, out_dir: Path, slide_label: str) -> ConvertedSlide:
    """``source`` converted as convert does (DICOM levels, the pyramid extended), without the
    checks convert's own tests cover (dciodvfy, the re-open)."""
    options = ConversionOptions(
        outputs=frozenset({"dicom", "tiff"}), run_dciodvfy=False, reopen_check=False
    )
    result = convert_slide([source], out_dir, DicomIdentity(slide_label), options)
    levels = tuple(
        ConvertedLevel(
            index=level.index,
            width_px=level.width_px,
            height_px=level.height_px,
            tile_size_px=level.tile_size_px,
            mpp_x=level.mpp_x,
            mpp_y=level.mpp_y,
            compression=Compression(level.compression),
            lossless_copy=level.lossless_copy,
        )
        for level in result.levels
    )
    files = tuple(path for path in result.dicom_files if path.name.startswith("level-"))
    return ConvertedSlide(files, levels, result.tiff_file)


def put(store: MemoryStore, bucket: str, key: str, data: bytes) -> ObjectRef:
    store.objects[(bucket, key)] = data
    return ObjectRef(
        bucket=bucket, key=key, sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data)
    )


def mask_png(usable: npt.NDArray[np.bool_]) -> bytes:
    ok, encoded = cv2.imencode(".png", np.where(usable, 255, 0).astype(np.uint8))
    assert ok
    return encoded.tobytes()


def decode_png(data: bytes) -> npt.NDArray[np.uint8]:
    """A stored PNG as RGB."""
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert bgr is not None, "not a PNG"
    return np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), np.uint8)


def qc_event(
    store: MemoryStore,
    slide: ConvertedSlide,
    usable: npt.NDArray[np.bool_],
    *,
    tenant: str,
    verdict: QcVerdict = QcVerdict.PASS,
    slide_id: UUID | None = None,
    tiff_only: bool = False,
) -> SlideQcV1:
    """The QC event of ``slide`` with its levels and mask stored where QC and convert put them
    (only the pyramidal TIFF with ``tiff_only``: a tenant whose conversion writes no DICOM)."""
    slide_id = slide_id or uuid4()
    dicom = tuple(
        put(store, "converted", f"{tenant}/{slide_id}/dicom/{path.name}", path.read_bytes())
        for path in ([] if tiff_only else slide.files)
    )
    tiff = None
    if tiff_only:
        assert slide.tiff is not None
        key = f"{tenant}/{slide_id}/tiff/{slide.tiff.name}"
        tiff = put(store, "converted", key, slide.tiff.read_bytes())
    mask = put(store, "derived", f"{tenant}/{slide_id}/qc/tissue-mask.png", mask_png(usable))
    return SlideQcV1(
        slide_id=slide_id,
        tenant=tenant,
        verdict=verdict,
        tissue_mask=mask,
        dicom=dicom,
        tiff=tiff,
        levels=slide.levels,
    )


def model_card(name: str = "grey", version: str = "1", **overrides: object) -> ModelCardV1:
    """A two-class model on 128 px tiles at 1 µm/px, with a 3-wide embedding."""
    document: dict[str, object] = {
        "name": name,
        "version": version,
        "input": {"tile_size_px": 128, "mpp_um": 1.0},
        "outputs": [
            {
                "name": "PROBS",
                "kind": "class_probabilities",
                "width": 2,
                "labels": ["dark", "light"],
            },
            {"name": "EMBED", "kind": "embedding", "width": 3},
        ],
        "max_batch_size": 8,
        "preferred_batch_sizes": [4],
        "min_tissue_fraction": 0.5,
        **overrides,
    }
    return ModelCardV1.model_validate(document)


def store_card(store: MemoryStore, card: ModelCardV1) -> None:
    store.objects[("models", f"{card.name}/{card.version}/card.json")] = (
        card.model_dump_json().encode()
    )


Model = Callable[[npt.NDArray[np.float32]], dict[str, np.ndarray]]


def mean_intensity_model(batch: npt.NDArray[np.float32]) -> dict[str, np.ndarray]:
    """``light`` = the tile's mean input (pixel/255 with mean 0, std 1); the embedding is the
    per-channel means."""
    light = batch.mean(axis=(1, 2, 3))
    probs = np.stack([1 - light, light], axis=1).astype(np.float32)
    return {"PROBS": probs, "EMBED": batch.mean(axis=(2, 3)).astype(np.float32)}


@dataclass
class FakeTriton:
    """:class:`~slidestream_inference.adapters.triton.TritonModels` in memory: ``model`` answers
    every request; ``fail_after`` requests, ``failure`` is raised instead."""

    model: Model = mean_intensity_model
    ready: dict[str, tuple[str, ...]] = field(default_factory=dict)
    failure: Exception | None = None
    fail_after: int = 0
    requests: int = 0
    tiles: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    versions_asked: list[tuple[str, str]] = field(default_factory=list)

    async def ready_versions(self, name: str) -> tuple[str, ...]:
        return self.ready.get(name, ())

    async def infer(
        self,
        name: str,
        version: str,
        input_name: str,
        batch: npt.NDArray[np.float32],
        output_names: Sequence[str],
    ) -> Mapping[str, np.ndarray | None]:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.001)  # let other requests start: in-flight is observable
            if self.failure is not None and self.requests >= self.fail_after:
                raise self.failure
            self.requests += 1
            self.tiles += len(batch)
            self.versions_asked.append((name, version))
            answer = self.model(batch)
            return {output: answer.get(output) for output in output_names}
        finally:
            self.in_flight -= 1
