"""The API's JSON parser: bounded nesting, so a deeply nested body is a 400, not a
RecursionError (a 500) in the json module."""

from __future__ import annotations

import json
import re
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


def nesting_depth_exceeds(text: str, limit: int) -> bool:
    """True when arrays/objects nest deeper than `limit` (brackets inside strings ignored).

    The scan runs in the regex engine, not a Python loop over every character: a body with
    fewer openers than the limit cannot exceed it, and otherwise only the brackets left
    once the strings are cut out are walked."""
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    for bracket in _BRACKET.findall(_STRING.sub("", text)):
        if bracket in "[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


class BoundedJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        raw = stream.read() if stream is not None else b""
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ParseError("The body is not UTF-8.") from exc
        if nesting_depth_exceeds(text, settings.API_MAX_JSON_DEPTH):
            raise ParseError(
                f"JSON nests deeper than {settings.API_MAX_JSON_DEPTH} levels.",
            )
        try:
            return json.loads(text, parse_constant=_refuse_constant)
        except (ValueError, RecursionError) as exc:
            raise ParseError(f"JSON parse error - {str(exc)[:200]}") from exc


def _refuse_constant(name: str) -> Any:
    # NaN and Infinity are not JSON; amounts must never become them.
    raise ValueError(f"{name} is not valid JSON")
