"""The operator roles (docs/runbooks/integration-retry-and-replay.md): the permissions and the
support groups that hold them."""

from __future__ import annotations

VIEW_CODENAME = "member_admin.view"
OPERATE_CODENAME = "member_admin.operate"
BOOK_CODENAME = "booking.book"
PERSONAL_DATA_CODENAME = "view_personal_data"
INGEST_CODENAME = "events.ingest"
PERMISSION_NAMES = {
    VIEW_CODENAME: "Can view recovery queues and platform state",
    OPERATE_CODENAME: "Can replay, pause and resolve recovery items",
    BOOK_CODENAME: "Can hold, confirm and cancel their own bookings",
    PERSONAL_DATA_CODENAME: "Can see customers' personal data unmasked",
    INGEST_CODENAME: "Can send events into integration queues",
}
SUPPORT_GROUPS = {
    "Support viewer": [VIEW_CODENAME],
    "Support operator": [VIEW_CODENAME, OPERATE_CODENAME, PERSONAL_DATA_CODENAME],
    "Booking client": [BOOK_CODENAME],
    # Producers outside this process: they add events, and see and change nothing else.
    "Event producer": [INGEST_CODENAME],
}


def ensure_support_groups(content_type_model, permission_model, group_model) -> None:
    """Create the permissions and groups if missing. Takes the models so the data
    migration can pass its historical ones and a flushed test database the real ones."""
    content_type, _ = content_type_model.objects.get_or_create(
        app_label="platform", model="auditevent"
    )
    permissions = {
        codename: permission_model.objects.get_or_create(
            content_type=content_type, codename=codename, defaults={"name": name}
        )[0]
        for codename, name in PERMISSION_NAMES.items()
    }
    for group_name, codenames in SUPPORT_GROUPS.items():
        group, _ = group_model.objects.get_or_create(name=group_name)
        group.permissions.add(*(permissions[c] for c in codenames))
