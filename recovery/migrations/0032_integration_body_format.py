"""Each integration says what its deliveries carry: the payload (as before), or the Standard
Webhooks envelope {type, timestamp, data}."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("recovery", "0031_edited_payload_new_webhook_id"),
    ]

    operations = [
        migrations.AddField(
            model_name="historicalintegration",
            name="body_format",
            field=models.CharField(
                choices=[
                    ("payload", "The event's payload as the producer sent it"),
                    ("standard_webhooks", "Standard Webhooks: {type, timestamp, data}"),
                ],
                db_default="payload",
                default="payload",
                max_length=20,
            ),
        ),
        migrations.AddField(
            model_name="integration",
            name="body_format",
            field=models.CharField(
                choices=[
                    ("payload", "The event's payload as the producer sent it"),
                    ("standard_webhooks", "Standard Webhooks: {type, timestamp, data}"),
                ],
                db_default="payload",
                default="payload",
                max_length=20,
            ),
        ),
    ]
