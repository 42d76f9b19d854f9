"""Seed 001's operator permissions and the two support groups that hold them."""

from django.db import migrations

VIEW = ("member_admin.view", "Can view recovery queues and platform state")
OPERATE = ("member_admin.operate", "Can replay, pause and resolve recovery items")
GROUPS = {"Support viewer": [VIEW], "Support operator": [VIEW, OPERATE]}


def create_groups(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    # Permissions are normally created after migrations (post_migrate); create them here so
    # the groups can hold them in the same migration run.
    content_type, _ = ContentType.objects.get_or_create(app_label="platform", model="auditevent")
    permissions = {}
    for codename, name in (VIEW, OPERATE):
        permissions[codename], _ = Permission.objects.get_or_create(
            content_type=content_type, codename=codename, defaults={"name": name}
        )
    for group_name, perms in GROUPS.items():
        group, _ = Group.objects.get_or_create(name=group_name)
        group.permissions.add(*(permissions[codename] for codename, _ in perms))


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=GROUPS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("platform", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
