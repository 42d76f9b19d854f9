"""DRF permissions for seed 001's operator roles."""

from __future__ import annotations

from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from opsconsole.models import BOOK_PERMISSION, OPERATE_PERMISSION, VIEW_PERMISSION


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
