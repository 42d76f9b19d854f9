"""The lockout counter (/metrics: opsconsole_auth_lockouts_total) counts the failed logins
that locked an account, on every scrape: a partial index holds those rows only, so the count
reads them and not every failed login."""

from django.db import migrations

INDEX = "axes_failurelog_locked_out"


def create(apps, schema_editor):
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {INDEX} ON axes_accessfailurelog (id) WHERE locked_out"
    )


def drop(apps, schema_editor):
    schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [
        ("platform", "0021_audit_reason_search"),
        ("axes", "0010_accessattemptexpiration"),
    ]

    operations = [migrations.RunPython(create, drop)]
