"""DRF permissions for seed 001's operator roles."""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from opsconsole.models import (
    BOOK_PERMISSION,
    INGEST_PERMISSION,
    OPERATE_PERMISSION,
    VIEW_PERMISSION,
)


class _HasPerm(BasePermission):
    perm: str = ""
    message = "You do not have permission to perform this action."

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.has_perm(self.perm))


class CanViewPlatform(_HasPerm):
    perm = VIEW_PERMISSION
    message = f"This needs the {VIEW_PERMISSION} permission."


class CanOperatePlatform(_HasPerm):
    perm = OPERATE_PERMISSION
    message = f"This needs the {OPERATE_PERMISSION} permission."


class CanIngest(_HasPerm):
    """Event producers (group Event producer) add events to an integration's queue."""

    perm = INGEST_PERMISSION
    message = f"This needs the {INGEST_PERMISSION} permission (group Event producer)."


class CanBook(_HasPerm):
    """Booking clients act on their own holds and bookings (the services check whose)."""

    perm = BOOK_PERMISSION
    message = f"This needs the {BOOK_PERMISSION} permission (group Booking client)."


class CanBookOrOperate(BasePermission):
    message = f"This needs the {BOOK_PERMISSION} or {OPERATE_PERMISSION} permission."

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        return bool(
            user
            and user.is_authenticated
            and (user.has_perm(BOOK_PERMISSION) or user.has_perm(OPERATE_PERMISSION))
        )


class CanViewOrOperate(BasePermission):
    """Reads need the view permission, changes the operate permission (one route, both)."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        if request.method in SAFE_METHODS:
            check: BasePermission = CanViewPlatform()
        else:
            check = CanOperatePlatform()
        self.message = check.message
        return check.has_permission(request, view)


class CanProduce(BasePermission):
    """Producers (group Event producer) and operators create what the console recovers:
    checkout sessions, vouchers, campaigns."""

    message = f"This needs the {INGEST_PERMISSION} or {OPERATE_PERMISSION} permission."

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        return bool(
            user
            and user.is_authenticated
            and (user.has_perm(INGEST_PERMISSION) or user.has_perm(OPERATE_PERMISSION))
        )


class CanRegisterPushTokens(BasePermission):
    """A booking client registers its own devices; a producer registers anyone's."""

    message = f"This needs the {BOOK_PERMISSION} or {INGEST_PERMISSION} permission."

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        return bool(
            user
            and user.is_authenticated
            and (user.has_perm(BOOK_PERMISSION) or user.has_perm(INGEST_PERMISSION))
        )
