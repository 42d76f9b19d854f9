"""The API's JSON parser: bounded nesting, so a deeply nested body is a 400, not a
RecursionError (a 500) in the json module."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


def nesting_depth_exceeds(value: Any, limit: int) -> bool:
    """True when the parsed arrays/objects of `value` nest deeper than `limit`.

    Walked level by level after parsing (the json module stops runaway nesting itself, with
    a RecursionError): only containers are visited, and the walk ends at the first level
    with none, so a wide body three levels deep costs three short passes, where scanning
    its text for brackets outside strings cost a quarter of a millisecond per 10 kB."""
    level = [value] if isinstance(value, dict | list) else []
    for _ in range(limit):
        deeper: list[Any] = []
        for container in level:
            children = container.values() if isinstance(container, dict) else container
            deeper += [child for child in children if isinstance(child, dict | list)]
        if not deeper:
            return False
        level = deeper
    return True


class BoundedJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        raw = stream.read() if stream is not None else b""
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ParseError("The body is not UTF-8.") from exc
        try:
            parsed = json.loads(text, parse_constant=_refuse_constant)
        except RecursionError:
            parsed = None
            too_deep = True
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {str(exc)[:200]}") from exc
        else:
            too_deep = nesting_depth_exceeds(parsed, settings.API_MAX_JSON_DEPTH)
        if too_deep:
            raise ParseError(f"JSON nests deeper than {settings.API_MAX_JSON_DEPTH} levels.")
        return parsed


def _refuse_constant(name: str) -> Any:
    # NaN and Infinity are not JSON; amounts must never become them.
    raise ValueError(f"{name} is not valid JSON")
