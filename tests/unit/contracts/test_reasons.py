"""Every reason code the platform can put on a slide has words a partner can act on."""

from __future__ import annotations

import importlib
import pkgutil
import re

import pytest

import slidestream_platform
import slidestream_wsi
from slidestream_contracts.reasons import REASONS, UNKNOWN_REASON, explain
from slidestream_platform.errors import SlidestreamError
from slidestream_wsi.errors import SlideError

SERVICE_PACKAGES = (
    "slidestream_upload",
    "slidestream_deid",
    "slidestream_convert",
    "slidestream_qc",
    "slidestream_inference",
    "slidestream_catalog",
)
REASON_CODE = re.compile(r"^[a-z0-9][a-z0-9:_-]{0,63}$")
"""``ReasonCode``'s pattern (slidestream_contracts.events)."""


def _import_everything() -> None:
    for package in (slidestream_platform, slidestream_wsi):
        for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if not module.name.endswith("samples"):
                importlib.import_module(module.name)
    for name in SERVICE_PACKAGES:
        package = importlib.import_module(name)
        for module in pkgutil.walk_packages(package.__path__, name + "."):
            if ".migrations" not in module.name:
                importlib.import_module(module.name)


def _subclasses(root: type) -> set[type]:
    found: set[type] = set()
    pending = [root]
    while pending:
        for sub in pending.pop().__subclasses__():
            if sub not in found:
                found.add(sub)
                pending.append(sub)
    return found


def test_every_error_class_has_words() -> None:
    _import_everything()
    classes = _subclasses(SlidestreamError) | _subclasses(SlideError) | {SlideError}
    missing = {f"{c.__module__}.{c.__qualname__}": c.reason for c in classes}
    missing = {name: code for name, code in missing.items() if code not in REASONS}
    assert missing == {}


@pytest.mark.parametrize(
    "code",
    [
        # Rejections and verdicts that are not error classes.
        "unsupported-format",
        "checksum-mismatch",
        "checksum-required",
        "empty-archive",
        "archive-too-many-members",
        "archive-path-traversal",
        "archive-symlink",
        "archive-bomb",
        "corrupt-archive",
        "upload-verification-failed",
        "expired",
        "terminated",
        "phi-residual",
        "invalid-manifest",
        "qc-warn",
        "qc-fail",
        "unhandled-error",
    ],
)
def test_rejections_and_verdicts_have_words(code: str) -> None:
    assert code in REASONS


def test_the_words_are_sentences_without_internals() -> None:
    for code, text in REASONS.items():
        assert REASON_CODE.match(code), code
        for sentence in (text.summary, text.action):
            assert sentence[0].isupper() and sentence.endswith("."), (code, sentence)
            assert "Error" not in sentence and "dlq" not in sentence, (code, sentence)


def test_explain() -> None:
    assert explain(None) is None
    assert explain("") is None
    assert explain("conformance-failed") is REASONS["conformance-failed"]
    assert explain("a-code-from-a-newer-version") is UNKNOWN_REASON
