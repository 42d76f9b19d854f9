"""One spelling for retry state (opsconsole.db.retryable): the model fields are renamed, the
columns keep their names (db_column), so nothing in the database changes."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("payments", "0015_stripe_event_api_version")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RenameField("hostedcheckoutsession", "retry_count", "attempt_count"),
                migrations.AlterField(
                    "hostedcheckoutsession",
                    "attempt_count",
                    models.PositiveIntegerField(default=0, db_column="retry_count"),
                ),
                migrations.RenameField("refund", "attempts", "attempt_count"),
                migrations.AlterField(
                    "refund",
                    "attempt_count",
                    models.PositiveIntegerField(default=0, db_column="attempts"),
                ),
                migrations.RenameField("webhookfailure", "reprocess_attempts", "attempt_count"),
                migrations.AlterField(
                    "webhookfailure",
                    "attempt_count",
                    models.PositiveIntegerField(default=0, db_column="reprocess_attempts"),
                ),
                # The same check on the same column, under the field's new name.
                migrations.RemoveConstraint(
                    "hostedcheckoutsession", "hosted_session_retries_within_max"
                ),
                migrations.AddConstraint(
                    "hostedcheckoutsession",
                    models.CheckConstraint(
                        condition=models.Q(attempt_count__lte=models.F("max_retries")),
                        name="hosted_session_retries_within_max",
                    ),
                ),
            ]
        )
    ]
