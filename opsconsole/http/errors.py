"""One JSON error envelope for every error in every app.

    {"error": {"code": "INT-409-RECOVERY-REPLAY-CONFLICT", "message": "...",
               "details": {...}, "request_id": "..."}}

Services raise ApplicationError subclasses (never DRF exceptions); api_exception_handler,
the Django error handlers and ApiExceptionMiddleware map everything else to the same shape.
Generic codes take the prefix of the view's app (`error_prefix`, e.g. INT, BKG, PAY).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog
from django.contrib import admin
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response

from opsconsole.http.context import current_request_id

logger = structlog.get_logger(__name__)

DEFAULT_PREFIX = "OPS"
API_PATH_PREFIXES = ("/api/", "/platform/", "/webhooks/", "/metrics")

# Generic outcomes shared by every app; the app prefix is added in front.
GENERIC_CODES: dict[int, str] = {
    400: "400-INVALID-PAYLOAD",
    401: "401-UNAUTHENTICATED",
    403: "403-FORBIDDEN",
    404: "404-NOT-FOUND",
    405: "405-METHOD-NOT-ALLOWED",
    406: "406-NOT-ACCEPTABLE",
    409: "409-CONFLICT",
    413: "413-PAYLOAD-TOO-LARGE",
    415: "415-UNSUPPORTED-MEDIA-TYPE",
    422: "422-UNPROCESSABLE",
    429: "429-THROTTLED",
    500: "500-INTERNAL-ERROR",
    503: "503-DEPENDENCY-UNAVAILABLE",
}


class ApplicationError(Exception):
    """A domain error with a stable code; the message is safe to show to the caller."""

    status_code: int = 400
    code: str = "OPS-400-INVALID-PAYLOAD"
    default_message: str = "The request could not be processed."
    # Sent as Retry-After when set (a 503 is otherwise answered with 5 seconds).
    retry_after_seconds: int | None = None

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.message = message or self.default_message
        if code:
            self.code = code
        self.details = details or {}
        super().__init__(self.message)


class InvalidInput(ApplicationError):
    status_code = 400
    code = "OPS-400-INVALID-PAYLOAD"
    default_message = "The request is invalid."


class NotFound(ApplicationError):
    status_code = 404
    code = "OPS-404-NOT-FOUND"
    default_message = "Not found."


class Conflict(ApplicationError):
    status_code = 409
    code = "OPS-409-CONFLICT"
    default_message = "The request conflicts with the current state."


class Unprocessable(ApplicationError):
    status_code = 422
    code = "OPS-422-UNPROCESSABLE"
    default_message = "The request cannot be processed."


class DependencyUnavailable(ApplicationError):
    status_code = 503
    code = "OPS-503-DEPENDENCY-UNAVAILABLE"
    default_message = "A required dependency is unavailable; nothing was changed."


def generic_code(status: int, prefix: str = DEFAULT_PREFIX) -> str:
    suffix = GENERIC_CODES.get(status) or f"{status}-ERROR"
    return f"{prefix}-{suffix}"


def envelope(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message,
            "details": details or {},
            "request_id": current_request_id(),
        }
    }


def error_json_response(
    status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> JsonResponse:
    return JsonResponse(envelope(code, message, details), status=status)


def is_database_unavailable(exc: BaseException) -> bool:
    return isinstance(exc, OperationalError | InterfaceError)


def _prefix_for(context: dict[str, Any]) -> str:
    view = context.get("view")
    return getattr(view, "error_prefix", DEFAULT_PREFIX)


def _details_from_drf(exc: drf_exceptions.APIException) -> dict[str, Any]:
    detail = exc.detail
    if isinstance(detail, dict):
        return {"fields": detail}
    if isinstance(detail, list):
        return {"non_field_errors": detail}
    return {}


def _message_from_drf(exc: drf_exceptions.APIException) -> str:
    if isinstance(exc, drf_exceptions.ValidationError):
        return "The request is invalid; see details."
    return str(exc.detail)


# The prefixes that answer a body of the wrong media type as an invalid payload.
BODY_IS_PAYLOAD = frozenset({"INT"})


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF EXCEPTION_HANDLER: every exception a view raises becomes the envelope."""
    prefix = _prefix_for(context)
    headers: dict[str, str] = {}

    if isinstance(exc, ApplicationError):
        status, code, message, details = exc.status_code, exc.code, exc.message, exc.details
        if exc.retry_after_seconds is not None:
            headers["Retry-After"] = str(exc.retry_after_seconds)
    elif isinstance(exc, drf_exceptions.UnsupportedMediaType) and prefix in BODY_IS_PAYLOAD:
        # One code for an invalid path, query or body
        # (docs/runbooks/integration-retry-and-replay.md): a body that is not JSON is an invalid
        # payload there, not a 415.
        status, code = 400, f"{prefix}-400-INVALID-PAYLOAD"
        message = "The body must be JSON (Content-Type: application/json)."
        details = {"content_type": str(exc.detail)[:200]}
    elif isinstance(exc, drf_exceptions.APIException):
        status = exc.status_code
        code = generic_code(status, prefix)
        message = _message_from_drf(exc)
        details = _details_from_drf(exc)
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header  # type: ignore[attr-defined]
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait))  # type: ignore[attr-defined]
    elif isinstance(exc, Http404):
        status, code, message, details = 404, generic_code(404, prefix), "Not found.", {}
    elif isinstance(exc, RequestDataTooBig):
        status, code = 413, generic_code(413, prefix)
        message, details = "The body is too large.", {}
    elif isinstance(exc, PermissionDenied):
        status, code = 403, generic_code(403, prefix)
        message, details = "You do not have permission to perform this action.", {}
    elif is_database_unavailable(exc):
        logger.error("dependency_unavailable", dependency="database", error=str(exc))
        status, code = 503, generic_code(503, prefix)
        message, details = "The database is unavailable; nothing was changed.", {}
    else:
        logger.exception("unhandled_api_exception", error_type=type(exc).__name__)
        status, code = 500, generic_code(500, prefix)
        message, details = "An unexpected error occurred.", {}

    if status == 503:
        headers.setdefault("Retry-After", "5")
    return Response(envelope(code, message, details), status=status, headers=headers)


def is_api_path(path: str) -> bool:
    return path.startswith(API_PATH_PREFIXES)


class ApiExceptionMiddleware:
    """Exceptions raised by non-DRF views under the API paths still get the envelope."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if not is_api_path(request.path):
            return None
        if isinstance(exc, ApplicationError):
            return error_json_response(exc.status_code, exc.code, exc.message, exc.details)
        if isinstance(exc, Http404):
            return error_json_response(404, generic_code(404), "Not found.")
        if is_database_unavailable(exc):
            logger.error("dependency_unavailable", dependency="database", error=str(exc))
            return error_json_response(
                503, generic_code(503), "The database is unavailable; nothing was changed."
            )
        logger.exception("unhandled_api_exception", error_type=type(exc).__name__)
        return error_json_response(500, generic_code(500), "An unexpected error occurred.")


def _html_or_json(default_view: Callable[..., HttpResponse], status: int, message: str):
    def handler(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
        if is_api_path(request.path):
            return error_json_response(status, generic_code(status), message)
        if exception is None:
            return default_view(request)
        return default_view(request, exception)

    return handler


def _django_defaults() -> dict[str, Callable[..., HttpResponse]]:
    from django.views import defaults

    return {
        "400": defaults.bad_request,
        "403": defaults.permission_denied,
        "404": defaults.page_not_found,
        "500": defaults.server_error,
    }


def console_permission_denied(
    request: HttpRequest, exception: Exception | None = None
) -> HttpResponse:
    """The console's refused page with the admin's header (its links, who is signed in), as
    the refused action pages show it: a viewer refused anywhere can go on from there."""
    context: dict[str, Any] = {"exception": str(exception) if exception else ""}
    if request.user.is_authenticated and request.user.is_staff:
        context.update(admin.site.each_context(request))
    return TemplateResponse(request, "403.html", context, status=403).render()


_defaults = _django_defaults()
handler400 = _html_or_json(_defaults["400"], 400, "The request is invalid.")
handler403 = _html_or_json(console_permission_denied, 403, "You do not have permission.")
handler404 = _html_or_json(_defaults["404"], 404, "Not found.")
handler500 = _html_or_json(_defaults["500"], 500, "An unexpected error occurred.")


@csrf_exempt  # an unknown route answers its 404 envelope, not the CSRF check's HTML 403
def api_not_found(request: HttpRequest, unmatched: str = "") -> JsonResponse:
    """Catch-all for unknown routes under the API prefixes, whatever DEBUG says."""
    return error_json_response(404, generic_code(404), f"No route for {request.path}.")
