"""The bulk replay job tables go: their rows live on as bulk actions (0013)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("recovery", "0013_bulk_replay_jobs_become_bulk_actions")]

    operations = [
        migrations.DeleteModel(name="BulkReplayJobItem"),
        migrations.DeleteModel(name="BulkReplayJob"),
    ]
