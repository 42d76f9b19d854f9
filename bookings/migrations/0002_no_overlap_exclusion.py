"""The hard guarantee against double booking, on PostgreSQL: no two slot-occupying holds of
one resource overlap, and no two live bookings do. btree_gist lets the GiST index compare
resource_id with `=` next to the range overlap `&&`.

SQLite (the embedded development default) has no exclusion constraints; there the locked
check in booking_hold_create is the only guard, which is why the suite runs on PostgreSQL.
"""

from django.db import migrations

CREATE = [
    "CREATE EXTENSION IF NOT EXISTS btree_gist",
    """ALTER TABLE bookings_bookinghold ADD CONSTRAINT booking_hold_no_overlap
       EXCLUDE USING gist (resource_id WITH =, tstzrange(start_time, end_time, '[)') WITH &&)
       WHERE (occupies_slot)""",
    """ALTER TABLE bookings_booking ADD CONSTRAINT booking_live_no_overlap
       EXCLUDE USING gist (resource_id WITH =, tstzrange(start_time, end_time, '[)') WITH &&)
       WHERE (status IN ('CONFIRMED', 'CHECKED_IN', 'CANCELLING'))""",
]
DROP = [
    "ALTER TABLE bookings_booking DROP CONSTRAINT IF EXISTS booking_live_no_overlap",
    "ALTER TABLE bookings_bookinghold DROP CONSTRAINT IF EXISTS booking_hold_no_overlap",
]


def run(statements: list[str]):
    def apply(apps, schema_editor) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        for statement in statements:
            schema_editor.execute(statement)

    return apply


class Migration(migrations.Migration):
    dependencies = [("bookings", "0001_initial")]

    operations = [migrations.RunPython(run(CREATE), run(DROP))]
