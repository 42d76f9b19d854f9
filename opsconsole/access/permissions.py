"""DRF permissions for the operator roles (docs/runbooks/integration-retry-and-replay.md)."""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser
from rest_framework.exceptions import NotAuthenticated
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from opsconsole.models import (
    BOOK_PERMISSION,
    INGEST_PERMISSION,
    OPERATE_PERMISSION,
    VIEW_PERMISSION,
)


class _HasAnyPerm(BasePermission):
    """An authenticated user holding any of `perms`."""

    perms: tuple[str, ...] = ()
    message = "You do not have permission to perform this action."

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and any(user.has_perm(p) for p in self.perms))


class CanViewPlatform(_HasAnyPerm):
    perms = (VIEW_PERMISSION,)
    message = f"This needs the {VIEW_PERMISSION} permission."


class CanOperatePlatform(_HasAnyPerm):
    perms = (OPERATE_PERMISSION,)
    message = f"This needs the {OPERATE_PERMISSION} permission."


class CanIngest(_HasAnyPerm):
    """Event producers (group Event producer) add events to an integration's queue."""

    perms = (INGEST_PERMISSION,)
    message = f"This needs the {INGEST_PERMISSION} permission (group Event producer)."


class CanBook(_HasAnyPerm):
    """Booking clients act on their own holds and bookings (the services check whose)."""

    perms = (BOOK_PERMISSION,)
    message = f"This needs the {BOOK_PERMISSION} permission (group Booking client)."


class CanBookOrOperate(_HasAnyPerm):
    perms = (BOOK_PERMISSION, OPERATE_PERMISSION)
    message = f"This needs the {BOOK_PERMISSION} or {OPERATE_PERMISSION} permission."


class CanViewOrOperate(BasePermission):
    """Reads need the view permission, changes the operate permission (one route, both)."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        if request.method in SAFE_METHODS:
            check: BasePermission = CanViewPlatform()
        else:
            check = CanOperatePlatform()
        self.message = getattr(check, "message", "")
        return check.has_permission(request, view)


class CanProduce(_HasAnyPerm):
    """Producers (group Event producer) and operators create what the console recovers:
    checkout sessions, vouchers, campaigns."""

    perms = (INGEST_PERMISSION, OPERATE_PERMISSION)
    message = f"This needs the {INGEST_PERMISSION} or {OPERATE_PERMISSION} permission."


class CanRegisterPushTokens(_HasAnyPerm):
    """A booking client registers its own devices; a producer registers anyone's."""

    perms = (BOOK_PERMISSION, INGEST_PERMISSION)
    message = f"This needs the {BOOK_PERMISSION} or {INGEST_PERMISSION} permission."


class CanBookOrView(_HasAnyPerm):
    """Reads a booking client needs to book (which resources exist), open to staff too."""

    perms = (BOOK_PERMISSION, VIEW_PERMISSION)
    message = f"This needs the {BOOK_PERMISSION} or {VIEW_PERMISSION} permission."


def signed_in_user(request: Request) -> AbstractBaseUser:
    """The request's user, once a permission class let an authenticated one through."""
    user = request.user
    if not isinstance(user, AbstractBaseUser):
        raise NotAuthenticated()
    return user
