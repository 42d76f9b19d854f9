"""Every admin action that changes something goes through the one confirmation decorator:
a page that counts what it will touch, then a reason, then one act per confirmation."""

from __future__ import annotations

import pytest
from django.contrib import admin

# Actions that only read (a CSV download of what is selected).
READ_ONLY_ACTIONS = {"export_invalid_numbers"}
CONSOLE_PACKAGES = {"opsconsole", "recovery", "payments", "bookings", "notifications", "storefront"}


def site_actions() -> list[tuple[str, str, object]]:
    """The console's own admin actions (third-party admins such as axes' are theirs)."""
    found = []
    for model, model_admin in admin.site._registry.items():
        if type(model_admin).__module__.split(".")[0] not in CONSOLE_PACKAGES:
            continue
        for name in model_admin.actions or []:
            if isinstance(name, str):
                found.append((model._meta.label, name, getattr(type(model_admin), name)))
    return found


def test_the_admin_has_console_actions_to_check():
    assert len(site_actions()) >= 20


@pytest.mark.parametrize(("model", "name", "func"), site_actions())
def test_every_changing_admin_action_asks_for_confirmation_and_a_reason(model, name, func):
    if name in READ_ONLY_ACTIONS:
        return
    assert getattr(func, "asks_for_confirmation", False), f"{model}.{name}"
    assert getattr(func, "allowed_permissions", None), f"{model}.{name} declares no permission"
