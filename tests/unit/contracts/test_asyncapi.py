from __future__ import annotations

from pathlib import Path

import yaml

from slidestream_contracts.asyncapi import build_document
from slidestream_contracts.topics import Topic

DOCUMENT = Path(__file__).parents[3] / "docs" / "asyncapi.yaml"


def test_committed_document_matches_the_code() -> None:
    assert DOCUMENT.read_text(encoding="utf-8") == build_document(), "run `make asyncapi`"


def test_document_lists_every_topic_with_its_schema() -> None:
    document = yaml.safe_load(build_document())
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert {topic.value for topic in Topic} <= addresses
    assert "dlq.deid.v1" in addresses
    assert "SlideUploadedV1" in document["components"]["schemas"]


def test_committed_json_schemas_match_the_code() -> None:
    from slidestream_contracts.schemas import schema_documents

    folder = DOCUMENT.parent / "schemas"
    committed = {path.name: path.read_text(encoding="utf-8") for path in folder.glob("*.json")}
    assert committed == schema_documents(), "run `make asyncapi`"
    assert "slides.uploaded.v1.json" in committed
