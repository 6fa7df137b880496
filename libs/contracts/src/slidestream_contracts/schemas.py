"""JSON Schema (draft 2020-12, as pydantic emits it) of every event, one file per topic, and of
the objects services hand each other through storage (the quarantine manifest).

``python -m slidestream_contracts.schemas --out docs/schemas`` writes them;
``--check docs/schemas`` fails when the committed files and the code disagree (``make lint``).
Consumers in other languages validate against these files; the AsyncAPI document embeds the same
schemas.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pydantic import BaseModel

from slidestream_contracts.events import PIPELINE_EVENTS, DeadLetterRecordV1
from slidestream_contracts.model_card import ModelCardV1
from slidestream_contracts.quarantine import QuarantineManifestV1

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def schema_documents() -> dict[str, str]:
    """File name → JSON text, for every pipeline event, the dead-letter record and the
    quarantine manifest and the model card."""
    models: list[tuple[str, type[BaseModel]]] = [
        (f"{event.TOPIC.value}.json", event) for event in PIPELINE_EVENTS
    ]
    models.append(("dlq.v1.json", DeadLetterRecordV1))
    models.append(("quarantine-manifest.v1.json", QuarantineManifestV1))
    models.append(("model-card.v1.json", ModelCardV1))
    documents: dict[str, str] = {}
    for name, model in models:
        schema = {"$schema": SCHEMA_DIALECT, **model.model_json_schema(mode="serialization")}
        documents[name] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return documents


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--out", type=Path, help="write the schema files into this folder")
    group.add_argument("--check", type=Path, help="fail if this folder differs from the code")
    args = parser.parse_args(argv)
    documents = schema_documents()
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        for stale in set(p.name for p in args.out.glob("*.json")) - set(documents):
            (args.out / stale).unlink()
        for name, text in documents.items():
            (args.out / name).write_text(text, encoding="utf-8")
        return 0
    folder: Path = args.check
    present = {p.name: p.read_text(encoding="utf-8") for p in folder.glob("*.json")}
    if present != documents:
        print(
            f"{folder} is out of date with libs/contracts; regenerate with `make asyncapi`",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
