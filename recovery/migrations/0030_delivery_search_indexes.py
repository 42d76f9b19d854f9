"""The delivery list's search (opsconsole.db.text_search): a partner's error text and a payload
value (a customer's email) among open failures, by trigram indexes that only failed and DLQ
rows pay for (a successful delivery never enters them), and an event id exactly."""

from django.db import migrations

OPEN = "status IN ('failed', 'dlq')"
INDEXES = {
    "recovery_item_open_detail_trgm": (f"USING gin (failure_detail gin_trgm_ops) WHERE {OPEN}"),
    "recovery_item_open_payload_trgm": (f"USING gin ((payload::text) gin_trgm_ops) WHERE {OPEN}"),
    "recovery_item_event_id_idx": "(event_id) WHERE event_id <> ''",
}


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, definition in INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON recovery_recoveryitem {definition}"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("recovery", "0029_event_ids_per_producer")]

    operations = [migrations.RunPython(create, drop)]
