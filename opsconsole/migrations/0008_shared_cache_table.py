from django.core.management import call_command
from django.db import migrations


def create_cache_table(apps, schema_editor):
    # The database cache's table (rate limits, failed-token counters), created with the
    # schema so no deployment forgets `createcachetable`. A Redis cache needs none.
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    dependencies = [("platform", "0007_hot_path_indexes")]

    operations = [migrations.RunPython(create_cache_table, migrations.RunPython.noop)]
