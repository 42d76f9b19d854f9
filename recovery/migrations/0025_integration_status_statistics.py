from django.db import migrations

# The queue-depth sampler reads deliveries per integration and status from these statistics
# on a large table (opsconsole.monitoring.queue_depth.group_counts) instead of counting millions of rows
# every minute. The larger target keeps every pair of up to thousands of integrations.
STATISTICS = "recovery_item_integration_status_stats"


def create_statistics(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE STATISTICS IF NOT EXISTS {STATISTICS} (mcv) "
            "ON integration_id, status FROM recovery_recoveryitem"
        )
        schema_editor.execute(f"ALTER STATISTICS {STATISTICS} SET STATISTICS 5000")


def drop_statistics(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP STATISTICS IF EXISTS {STATISTICS}")


class Migration(migrations.Migration):
    dependencies = [
        ("recovery", "0024_inbox_at_scale_and_bulk_resolve"),
    ]

    operations = [migrations.RunPython(create_statistics, drop_statistics)]
