"""A NUL byte in a request's path or query is refused at the door: PostgreSQL cannot store
or compare one in text, so any lookup with it (an admin search, an id in a path) would end
in a database error, a 500, instead of a clear refusal."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest

from opsconsole.http.errors import error_json_response, generic_code, is_api_path


class NulByteRefusalMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        query = request.META.get("QUERY_STRING", "")
        if "\x00" in request.path or "%00" in query or "\x00" in query:
            message = "The request's path or query holds a NUL byte."
            if is_api_path(request.path):
                return error_json_response(400, generic_code(400), message)
            return HttpResponseBadRequest(message, content_type="text/plain")
        return self.get_response(request)
