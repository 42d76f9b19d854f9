"""The operator permissions and the two support groups that hold them."""

from django.db import migrations

from opsconsole.access.roles import SUPPORT_GROUPS, ensure_support_groups


def create_groups(apps, schema_editor):
    # Permissions are normally created after migrations (post_migrate); create them here so
    # the groups can hold them in the same migration run.
    ensure_support_groups(
        apps.get_model("contenttypes", "ContentType"),
        apps.get_model("auth", "Permission"),
        apps.get_model("auth", "Group"),
    )


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=SUPPORT_GROUPS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("platform", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
