"""The weekly digest worker is `weekly_digest_scheduler`, as the incident guide restarts it
from readyz: its status, its kill switch and its schedule keep their history under the name."""

from django.db import migrations

OLD, NEW = "weekly_digest", "weekly_digest_scheduler"


def rename(apps, schema_editor, old=OLD, new=NEW):
    for model in ("WorkerStatus", "WorkerSwitch"):
        rows = apps.get_model("platform", model).objects
        if not rows.filter(name=new).exists():
            rows.filter(name=old).update(name=new)
        else:
            rows.filter(name=old).delete()
    schedules = apps.get_model("django_q", "Schedule").objects
    if schedules.filter(name=new).exists():
        schedules.filter(name=old).delete()
    else:
        schedules.filter(name=old).update(name=new, args=repr((new,)))


def rename_back(apps, schema_editor):
    rename(apps, schema_editor, old=NEW, new=OLD)


class Migration(migrations.Migration):
    dependencies = [
        ("platform", "0023_worker_listener"),
        ("django_q", "0018_task_success_index"),
    ]

    operations = [migrations.RunPython(rename, rename_back)]
