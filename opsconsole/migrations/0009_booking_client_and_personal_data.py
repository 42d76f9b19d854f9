"""The Booking client group and the personal-data permission (operators hold it)."""

from django.db import migrations

from opsconsole.access.roles import ensure_support_groups


def create_groups(apps, schema_editor):
    ensure_support_groups(
        apps.get_model("contenttypes", "ContentType"),
        apps.get_model("auth", "Permission"),
        apps.get_model("auth", "Group"),
    )


class Migration(migrations.Migration):
    dependencies = [("platform", "0008_shared_cache_table")]

    operations = [migrations.RunPython(create_groups, migrations.RunPython.noop)]
