"""The audit search by text: operators' reasons, by a trigram index only rows with a reason
pay for (a worker's outcome row has none, and it is most of the table)."""

from django.db import migrations


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema_editor.execute(
        "CREATE INDEX IF NOT EXISTS audit_reason_trgm ON platform_auditevent "
        "USING gin (reason gin_trgm_ops) WHERE reason <> ''"
    )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS audit_reason_trgm")


class Migration(migrations.Migration):
    dependencies = [("platform", "0020_plural_names")]

    operations = [migrations.RunPython(create, drop)]
