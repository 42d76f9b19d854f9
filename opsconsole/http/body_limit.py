"""Request bodies over API_MAX_BODY_BYTES are refused with 413 before anything reads them
(webhooks included), so a 6 MB body costs a header check, not a parse."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from opsconsole.http.errors import error_json_response, generic_code, is_api_path


class BodySizeLimitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if is_api_path(request.path):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                return error_json_response(
                    400, generic_code(400), "Content-Length is not a number."
                )
            if length > settings.API_MAX_BODY_BYTES:
                return error_json_response(
                    413,
                    generic_code(413),
                    f"The body is larger than {settings.API_MAX_BODY_BYTES} bytes.",
                    {"max_bytes": settings.API_MAX_BODY_BYTES, "content_length": length},
                )
        return self.get_response(request)
