"""One spelling for retry state (opsconsole.db.retryable): the model fields are renamed, the
columns keep their names (db_column), so nothing in the database changes."""

import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("notifications", "0013_campaign_target_import")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RenameField("notification", "attempts", "attempt_count"),
                migrations.AlterField(
                    "notification",
                    "attempt_count",
                    models.PositiveIntegerField(default=0, db_column="attempts"),
                ),
                migrations.RenameField("campaigntarget", "attempts", "attempt_count"),
                migrations.AlterField(
                    "campaigntarget",
                    "attempt_count",
                    models.PositiveIntegerField(default=0, db_column="attempts"),
                ),
                # The same index on the same column, under the field's new name.
                migrations.RemoveIndex("campaigntarget", "campaign_target_due_idx"),
                migrations.RenameField("campaigntarget", "next_attempt_at", "next_retry_at"),
                migrations.AlterField(
                    "campaigntarget",
                    "next_retry_at",
                    models.DateTimeField(
                        default=django.utils.timezone.now, db_column="next_attempt_at"
                    ),
                ),
                migrations.AddIndex(
                    "campaigntarget",
                    models.Index(
                        condition=models.Q(status__in=["pending", "retry_scheduled"]),
                        fields=["campaign", "next_retry_at", "id"],
                        name="campaign_target_due_idx",
                    ),
                ),
            ]
        )
    ]
