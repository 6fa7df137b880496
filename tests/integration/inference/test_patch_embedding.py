"""An image patch embedded through the models API with the reference ``tile-embedding`` model in
the real Triton equals the embedding the pipeline stored for the same tile.

The model (``make models`` builds it into ``.local/models/tile-embedding``) is pushed under a
fresh name, loaded and routed to a fresh tenant through the stack's models API; a painted slide
goes through the whole stack (upload, deid, convert, QC, inference). Then this checkout's
inference service, started on a free port (:mod:`tests.support.inference_process`), is sent a
few of the tiles the run analysed, as PNG files of the card's tile size, with a token holding
only ``models:embed``.
"""

from __future__ import annotations

import asyncio
import io
import json
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import httpx
import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from slidestream_contracts.events import SlideInferredV1, SlideQcV1
from slidestream_contracts.model_card import ModelCardV1
from slidestream_contracts.topics import Topic, dead_letter_topic
from slidestream_platform.objectstore.minio_store import MinioObjectStore
from tests.support.inference_process import InferenceProcess
from tests.support.inference_stack import (
    REPO_ROOT,
    Janitor,
    ModelsApi,
    create_tenant,
    paint_slide,
    read_npz,
    read_verified,
    tiles_the_service_read,
    upload,
)
from tests.support.stack import Collector

pytestmark = pytest.mark.integration

REFERENCE_MODEL = REPO_ROOT / ".local" / "models" / "tile-embedding"
DLQ_INFERENCE = dead_letter_topic("inference")
PIPELINE_TIMEOUT_S = 300.0
EMBEDDING_ATOL = 1e-3
"""The stored embeddings are float16 of a unit-length vector (|x| <= 1): half precision rounds
by at most 4.9e-4; Triton's batch of one and the run's batches differ only in summation order."""
TILES_SENT = 6
EMBED_TOKEN = "ssk_" + secrets.token_hex(32)
HTTP_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class AnalysedSlide:
    model: str
    card: ModelCardV1
    qc: SlideQcV1
    inferred: SlideInferredV1


@pytest.fixture(scope="module")
async def analysed(
    stack_env: dict[str, str], janitor: Janitor, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[AnalysedSlide]:
    if not (REFERENCE_MODEL / "model.pt").is_file():
        pytest.fail(f"no reference model at {REFERENCE_MODEL}: run `make models` first")
    root = tmp_path_factory.mktemp("patch-embedding")
    name = janitor.model_name()
    card = ModelCardV1.model_validate_json((REFERENCE_MODEL / "card.json").read_bytes())
    card = card.model_copy(update={"name": name})
    card_path = root / "card.json"
    card_path.write_text(card.model_dump_json(), encoding="utf-8")
    (root / "slides").mkdir()
    topics = (Topic.SLIDES_QC.value, Topic.SLIDES_INFERRED.value, DLQ_INFERENCE)
    collector = Collector(stack_env["KAFKA_BOOTSTRAP"], topics)
    await collector.start()
    try:
        (tenant, token), _ = await asyncio.gather(
            asyncio.to_thread(create_tenant, "it-embed"),
            asyncio.to_thread(paint_slide, root / "slides" / "patches.tiff", seed=41),
        )
        janitor.client.push_path(REFERENCE_MODEL / "model.pt", name=name, card_path=card_path)
        janitor.client.load(name)
        janitor.route(name, tenant)
        uploaded = await asyncio.to_thread(
            upload, root / "slides", api=stack_env["UPLOAD_API"], token=token
        )
        slide_id = UUID(next(iter(uploaded.values())))

        def of(topic: str) -> list[dict[str, object]]:
            return [r.value for r in collector.of(slide_id, topic)]

        await collector.wait_for(
            lambda: bool(of(Topic.SLIDES_INFERRED.value) or of(DLQ_INFERENCE)),
            timeout_s=PIPELINE_TIMEOUT_S,
            what="inference of the slide with the reference embedding model",
        )
        assert of(DLQ_INFERENCE) == [], of(DLQ_INFERENCE)
        [qc] = of(Topic.SLIDES_QC.value)
        [inferred] = of(Topic.SLIDES_INFERRED.value)
        yield AnalysedSlide(
            model=name,
            card=card,
            qc=SlideQcV1.model_validate(qc),
            inferred=SlideInferredV1.model_validate(inferred),
        )
    finally:
        await collector.stop()


@pytest.fixture(scope="module")
def inference(
    stack_env: dict[str, str], models_api: ModelsApi, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[InferenceProcess]:
    """This checkout's inference service; the stack's models token may read and write, the
    test's token may only embed."""
    process = InferenceProcess(
        stack_env,
        tmp_path_factory.mktemp("inference-process"),
        tokens={
            EMBED_TOKEN: ("models:embed",),
            models_api.token: ("models:read", "models:write"),
        },
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()


def png(tile: npt.NDArray[np.uint8]) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(tile).save(buffer, format="PNG")
    return buffer.getvalue()


def embed(
    process: InferenceProcess, name: str, image: bytes, token: str, version: str | None = None
) -> httpx.Response:
    return httpx.post(
        f"{process.url}/v1/models/{name}/embed",
        headers={"Authorization": f"Bearer {token}"},
        data={} if version is None else {"version": version},
        files={"image": ("patch.png", image, "image/png")},
        timeout=HTTP_TIMEOUT_S,
    )


async def test_a_tile_sent_as_a_patch_embeds_as_the_pipeline_stored_it(
    analysed: AnalysedSlide,
    inference: InferenceProcess,
    store: MinioObjectStore,
    tmp_path: Path,
) -> None:
    inferred = analysed.inferred
    assert inferred.embeddings is not None
    [summary_ref] = [ref for ref in inferred.outputs if ref.key.endswith("/summary.json")]
    summary = json.loads(read_verified(store, summary_ref))
    stored = read_npz(read_verified(store, inferred.embeddings))
    tiles = await asyncio.to_thread(
        tiles_the_service_read,
        store,
        analysed.qc,
        stored,
        summary["level"],
        analysed.card,
        tmp_path,
    )
    assert len(tiles) == len(stored["embeddings"]) >= TILES_SENT
    chosen = np.linspace(0, len(tiles) - 1, TILES_SENT).astype(int)

    answered = []
    for position, index in enumerate(chosen):
        version = "1" if position == 0 else None  # asked for once, else the newest loaded
        response = await asyncio.to_thread(
            embed, inference, analysed.model, png(tiles[index]), EMBED_TOKEN, version
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["model"], body["version"], body["dimension"]) == (analysed.model, "1", 64)
        answered.append(np.asarray(body["embedding"], np.float32))

    expected = stored["embeddings"][chosen].astype(np.float32)
    got = np.stack(answered)
    np.testing.assert_allclose(got, expected, rtol=0, atol=EMBEDDING_ATOL)
    # Not equal by accident: each answer is nearest to its own tile's stored embedding.
    distances = np.linalg.norm(got[:, None, :] - expected[None, :, :], axis=2)
    assert list(distances.argmin(axis=1)) == list(range(TILES_SENT))
    assert np.linalg.norm(got, axis=1) == pytest.approx(1.0, abs=1e-3)  # the card's unit length


async def test_only_an_embed_token_embeds_and_refusals_name_their_reason(
    analysed: AnalysedSlide, inference: InferenceProcess, models_api: ModelsApi
) -> None:
    tile = png(np.full((64, 64, 3), 200, np.uint8))

    read_write = await asyncio.to_thread(embed, inference, analysed.model, tile, models_api.token)
    assert read_write.status_code == 403, read_write.text
    assert read_write.json()["error"] == "forbidden"
    unknown = await asyncio.to_thread(embed, inference, "it-no-such-model", tile, EMBED_TOKEN)
    assert unknown.status_code == 404, unknown.text
    not_an_image = await asyncio.to_thread(
        embed, inference, analysed.model, b"%PDF-1.7", EMBED_TOKEN
    )
    assert not_an_image.status_code == 422, not_an_image.text
    assert [p["field"] for p in not_an_image.json()["problems"]] == ["image"]
