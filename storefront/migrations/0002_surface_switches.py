"""Each storefront surface's waffle switch, on: a fresh database serves every surface until
an operator suspends one (Admin -> Storefront surfaces)."""

from django.db import migrations

from storefront.surfaces import ensure_storefront_surfaces


def create_switches(apps, schema_editor):
    ensure_storefront_surfaces(apps.get_model("waffle", "Switch"))


class Migration(migrations.Migration):
    dependencies = [
        ("storefront", "0001_initial"),
        ("waffle", "0004_update_everyone_nullbooleanfield"),
    ]

    # Reversed, the switches stay: they may have been flipped since, with audit rows.
    operations = [migrations.RunPython(create_switches, migrations.RunPython.noop)]
