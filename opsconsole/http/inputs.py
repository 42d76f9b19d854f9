"""Request input checks shared by every app's API: each app passes its own 400 error class."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.utils.dateparse import parse_datetime
from rest_framework import serializers

from opsconsole.http.errors import InvalidInput


def is_id(raw: object) -> bool:
    """Whether `raw` is a row id as text: ASCII digits that fit a bigint. `str.isdigit`
    alone accepts superscripts and other scripts' digits, which int() then rejects (a 500)
    or reads as another number, and digits past a bigint fail in the database."""
    return isinstance(raw, str) and raw.isascii() and raw.isdigit() and len(raw) <= 18


def parse_id(raw: str, name: str, error: type[InvalidInput]) -> int:
    """Path ids are validated here so a malformed one is a 400, not a 404 or a 500."""
    if not is_id(raw):
        raise error(
            f"{name} must be a positive integer.", details={"fields": {name: ["Invalid id."]}}
        )
    return int(raw)


def validated(
    serializer_class: type[serializers.Serializer], data: Any, error: type[InvalidInput]
) -> dict[str, Any]:
    """Validate `data`; unknown fields and timezone-naive datetimes are errors too, so a
    misspelt field or a local time is refused instead of silently ignored or guessed."""
    serializer = serializer_class(data=data)
    problems: dict[str, list[str]] = {}
    if isinstance(data, Mapping):
        for name in sorted(set(data) - set(serializer.fields)):
            problems[str(name)[:100]] = ["Unknown field."]
        for name, field in serializer.fields.items():
            raw = data.get(name)
            if isinstance(field, serializers.DateTimeField) and isinstance(raw, str):
                try:
                    parsed = parse_datetime(raw)
                except ValueError:
                    parsed = None
                if parsed is not None and parsed.tzinfo is None:
                    problems[name] = ["Give a timezone (Z or an offset such as +02:00)."]
    if not serializer.is_valid():
        for name, errors in serializer.errors.items():
            problems.setdefault(name, []).extend(
                errors if isinstance(errors, list) else [str(errors)]
            )
    if problems:
        raise error("The request is invalid; see details.", details={"fields": problems})
    return serializer.validated_data


def no_body(request: Any, error: type[InvalidInput]) -> None:
    """A route that takes no body refuses one: a field sent to it would be ignored without a
    word. No body at all, or the JSON object {}, is none; another JSON value is a 400, a
    body that does not parse is a 400 as anywhere else, and a body that is not JSON (a
    form, or one without a media type) is a 415."""
    data = request.data  # ParseError (400) or UnsupportedMediaType (415), in the envelope
    if isinstance(data, Mapping) and not data:
        return
    names = [str(name)[:100] for name in data] if isinstance(data, Mapping) else ["body"]
    raise error(
        "This route takes no body.",
        details={"fields": {name: ["This route takes no body."] for name in names}},
    )
