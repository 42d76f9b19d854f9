"""The Event producer group and its ingest permission (the ingestion API)."""

from django.db import migrations

from opsconsole.access.roles import ensure_support_groups


def create_groups(apps, schema_editor):
    ensure_support_groups(
        apps.get_model("contenttypes", "ContentType"),
        apps.get_model("auth", "Permission"),
        apps.get_model("auth", "Group"),
    )


class Migration(migrations.Migration):
    dependencies = [("platform", "0010_permission_names")]

    operations = [
        migrations.AlterModelOptions(
            name="auditevent",
            options={
                "ordering": ["-created_at", "-id"],
                "permissions": [
                    ("member_admin.view", "Can view recovery queues and platform state"),
                    ("member_admin.operate", "Can replay, pause and resolve recovery items"),
                    ("booking.book", "Can hold, confirm and cancel their own bookings"),
                    ("view_personal_data", "Can see customers' personal data unmasked"),
                    ("events.ingest", "Can send events into integration queues"),
                ],
            },
        ),
        migrations.RunPython(create_groups, migrations.RunPython.noop),
    ]
