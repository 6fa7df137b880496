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
