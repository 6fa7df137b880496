"""Parsing and writing of untrusted XML descriptions (OME-XML, Philips DPUfsImport)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET  # only to build and serialise; parsing goes through defusedxml

from defusedxml import ElementTree as SafeET

from slidestream_wsi.errors import CorruptSlideError

_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>\s*")
_XMLNS = re.compile(r'\sxmlns(?::(\w+))?="([^"]+)"')


def parse_xml(text: str) -> ET.Element:
    """Parse without DTDs, entity expansion or external references (defusedxml)."""
    try:
        # Register the document's prefixes so that serialising keeps them (no ns0: prefixes).
        for prefix, uri in _XMLNS.findall(text[:65536]):
            ET.register_namespace(prefix or "", uri)
        return SafeET.fromstring(text)
    except Exception as exc:  # defusedxml raises its own and expat's errors
        raise CorruptSlideError("description XML does not parse safely") from exc


def serialise_xml(root: ET.Element, original: str) -> str:
    body = ET.tostring(root, encoding="unicode", short_empty_elements=True)
    match = _DECLARATION.match(original)
    declaration = match.group(0).strip() if match else ""
    return declaration + body if declaration else body


def local_name(tag: str) -> str:
    """``{namespace}Name`` -> ``Name``."""
    return tag.rsplit("}", 1)[-1]
