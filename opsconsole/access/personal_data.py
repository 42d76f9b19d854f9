"""Personal data is shown only to holders of `platform.view_personal_data`.

Everyone else sees emails, phone numbers, voucher codes, push tokens, credentials in URLs
and authorization headers in stored snapshots masked, in the API and in the admin. The
masks keep enough to recognise a value on a call ("j***@example.com", "+35*******101"),
never enough to use it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.http import HttpRequest, HttpResponse

from opsconsole.models import PERSONAL_DATA_PERMISSION

MASK = "***"
# Any letters, not only ASCII (an internationalised address is still an address), and the
# apostrophes and other characters a local part may hold.
EMAIL_RE = re.compile(r"([\w.%+'-])[\w.%+'!#$&*/=?^`{|}~-]*@([\w-]+(?:\.[\w-]+)*\.\w{2,})")
# Digits grouped by spaces, brackets, dashes, dots or slashes (+351.912.345.678 too).
PHONE_RE = re.compile(r"(?<![\w])\+?\d[\d ()./-]{6,}\d(?![\w])")
SECRET_HEADER_RE = re.compile(r"authorization|cookie|token|secret|api[-_]?key|signature", re.I)
SECRET_PARAM_RE = re.compile(r"token|secret|key|sig|password|auth", re.I)


def can_see_personal_data(user: Any) -> bool:
    return bool(
        user is not None and user.is_authenticated and user.has_perm(PERSONAL_DATA_PERMISSION)
    )


def mask_email(value: str) -> str:
    return EMAIL_RE.sub(lambda m: f"{m.group(1)}{MASK}@{m.group(2)}", value)


def _mask_phone_match(match: re.Match[str]) -> str:
    digits = match.group(0)
    return digits[:3] + "*" * max(len(digits) - 6, 3) + digits[-3:]


def mask_text(value: str) -> str:
    """Emails and phone numbers inside free text (error details, response bodies)."""
    return PHONE_RE.sub(_mask_phone_match, mask_email(value))


def mask_code(value: str) -> str:
    return value[:2] + MASK if value else value


def mask_url(url: str) -> str:
    """Credentials in a URL: the user:password part and secret-looking query values."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rsplit('@', 1)[1]}"
    query = urlencode(
        [
            (name, MASK if SECRET_PARAM_RE.search(name) else value)
            for name, value in parse_qsl(parts.query, keep_blank_values=True)
        ],
        safe="*",
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def mask_link(url: str) -> str:
    """A link sent to a customer (a checkout or recovery link): whoever holds it may use it,
    so only where it leads (scheme and host) is shown."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    host = parts.netloc.rsplit("@", 1)[-1]
    return f"{parts.scheme}://{host}/{MASK}" if host else MASK


def mask_json(value: Any) -> Any:
    """A stored snapshot or payload: secret headers blanked, emails and phones masked."""
    if isinstance(value, dict):
        return {
            key: MASK
            if isinstance(key, str) and SECRET_HEADER_RE.search(key) and not isinstance(val, dict)
            else mask_json(val)
            for key, val in value.items()
        }
    if isinstance(value, list):
        return [mask_json(item) for item in value]
    if isinstance(value, str):
        if value.startswith(("http://", "https://")):
            return mask_link(value)
        return mask_text(value)
    return value


MASKERS = {
    "email": mask_email,
    "phone": mask_text,
    "text": mask_text,
    "code": mask_code,
    "url": mask_url,
    "link": mask_link,
    "json": mask_json,
    "secret": lambda value: MASK if value else value,
}


def mask(kind: str, value: Any) -> Any:
    """`value` masked as its kind says (an empty value stays empty)."""
    return value if value in (None, "") else MASKERS[kind](value)


def masked(user: Any, kind: str, value: Any) -> Any:
    return value if can_see_personal_data(user) else mask(kind, value)


def mask_fields(user: Any, data: dict[str, Any], kinds: dict[str, str]) -> dict[str, Any]:
    """The API's way: mask the named fields of one serialized object."""
    if can_see_personal_data(user):
        return data
    return {name: mask(kinds[name], v) if name in kinds else v for name, v in data.items()}


class MasksPersonalData:
    """A serializer mixin: `personal_fields` (name -> mask kind) are masked unless the
    request in the serializer's context is from a holder of the permission. Without a
    request in the context, they are masked: the safe default."""

    personal_fields: dict[str, str] = {}

    def to_representation(self, instance: Any) -> Any:
        data = super().to_representation(instance)  # type: ignore[misc]
        request = getattr(self, "context", {}).get("request")
        return mask_fields(getattr(request, "user", None), data, self.personal_fields)


# ---------------------------------------------------------------------------- the admin

# Whether the admin page being rendered may show personal data; set per request by
# PersonalDataVisibilityMiddleware. The default (no admin request: a worker, a command) masks.
_visible: ContextVar[bool] = ContextVar("personal_data_visible", default=False)


def visible_on_this_page() -> bool:
    return _visible.get()


def shown(kind: str, value: Any) -> Any:
    """`value` as the current admin page may show it."""
    return value if _visible.get() else mask(kind, value)


class PersonalDataVisibilityMiddleware:
    """Decides once per admin request whether its pages show personal data unmasked."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith("/admin/"):
            return self.get_response(request)
        token = _visible.set(can_see_personal_data(getattr(request, "user", None)))
        try:
            return self.get_response(request)
        finally:
            _visible.reset(token)


class PersonalFieldsAdmin:
    """Admin pages whose `personal_fields` (field name -> mask kind) are shown masked to
    staff without the permission, in the list and on the record's page."""

    personal_fields: ClassVar[dict[str, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, kind in cls.personal_fields.items():
            setattr(cls, f"masked_{name}", _masked_display(name, kind))

    def _swap(self, request: HttpRequest, names: Any) -> Any:
        if can_see_personal_data(request.user):
            return names
        swapped: list[Any] = []
        for entry in names:
            if isinstance(entry, list | tuple):
                swapped.append(tuple(self._swap(request, entry)))
            else:
                swapped.append(f"masked_{entry}" if entry in self.personal_fields else entry)
        return swapped

    def get_list_display(self, request: HttpRequest) -> Any:
        return self._swap(request, super().get_list_display(request))  # type: ignore[misc]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # Each once: a page without declared fields lists the form's fields and the
        # read-only ones, and both name the masked stand-in.
        fields = self._swap(request, super().get_fields(request, obj))  # type: ignore[misc]
        return list(dict.fromkeys(fields))

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        readonly = list(super().get_readonly_fields(request, obj))  # type: ignore[misc]
        if can_see_personal_data(request.user):
            return readonly
        masked = [*self._swap(request, readonly), *(f"masked_{n}" for n in self.personal_fields)]
        return list(dict.fromkeys(masked))


def _masked_display(name: str, kind: str) -> Callable[[Any, Any], Any]:
    def display(self: Any, obj: Any) -> Any:
        return mask(kind, getattr(obj, name))

    display.short_description = name.replace("_", " ")  # type: ignore[attr-defined]
    display.admin_order_field = name  # type: ignore[attr-defined]
    return display
