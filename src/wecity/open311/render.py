"""Open311 bodies in both of the spec's formats: XML as its examples, JSON as its mapping."""

from __future__ import annotations

import json
import re
from typing import Any
from xml.sax.saxutils import escape

from fastapi.responses import Response

XML_HEADER = '<?xml version="1.0" encoding="utf-8"?>\n'
JSON_TYPE = "application/json; charset=utf-8"
XML_TYPE = "text/xml; charset=utf-8"

# Characters XML 1.0 does not allow anywhere in a document (§2.2 Char): C0 controls other than tab, newline
# and carriage return, lone surrogates, and U+FFFE/U+FFFF. One of them in any citizen's text would make the
# whole list ill-formed for every client, so each is written as U+FFFD instead.
_NOT_XML_CHAR = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value: str) -> str:
    """`value` as XML character data: markup escaped, characters XML 1.0 forbids replaced by U+FFFD."""
    return escape(_NOT_XML_CHAR.sub("\ufffd", value))


def _xml_value(tag: str, value: Any, item_tags: dict[str, str]) -> str:
    if value is None:
        return f"<{tag}/>"
    if isinstance(value, bool):
        return f"<{tag}>{'true' if value else 'false'}</{tag}>"
    if isinstance(value, dict):
        inner = "".join(_xml_value(k, v, item_tags) for k, v in value.items())
        return f"<{tag}>{inner}</{tag}>"
    if isinstance(value, list):
        child = item_tags.get(tag, tag.rstrip("s") or "item")
        return f"<{tag}>{''.join(_xml_value(child, v, item_tags) for v in value)}</{tag}>"
    return f"<{tag}>{xml_text(str(value))}</{tag}>"


def to_xml(root: str, item: str | None, data: Any, item_tags: dict[str, str] | None = None) -> str:
    """`<root><item>...</item>...</root>` for a list, or `<root>...</root>` for a dict."""
    tags = {"keywords": "keyword", "values": "value", "attributes": "attribute", "photos": "photo",
            "notes": "note", **(item_tags or {})}
    if isinstance(data, list):
        body = "".join(_xml_value(item or "item", entry, tags) for entry in data)
    else:
        body = "".join(_xml_value(k, v, tags) for k, v in data.items())
    return f"{XML_HEADER}<{root}>{body}</{root}>"


def respond(fmt: str, data: Any, *, root: str, item: str | None = None, status: int = 200,
            headers: dict[str, str] | None = None) -> Response:
    if fmt == "xml":
        return Response(to_xml(root, item, data), status_code=status, media_type=XML_TYPE, headers=headers)
    return Response(json.dumps(data, ensure_ascii=False, separators=(",", ":")), status_code=status,
                    media_type=JSON_TYPE, headers=headers)


def errors_body(fmt: str, status: int, description: str) -> tuple[str, str]:
    """(body, media type) of the spec's error array: [{"code": ..., "description": ...}]."""
    errors = [{"code": status, "description": description}]
    if fmt == "xml":
        return to_xml("errors", "error", errors), XML_TYPE
    return json.dumps(errors, ensure_ascii=False), JSON_TYPE
