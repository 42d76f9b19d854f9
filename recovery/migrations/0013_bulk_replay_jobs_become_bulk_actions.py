"""The admin's bulk replay jobs become bulk actions: one bulk engine. Every job and each of its
frozen items is kept, with its progress and outcome; the job tables go in the next migration."""

from django.db import migrations, models

JOB_STATUS = {
    "queued": "running",  # queued jobs were started by their creation; they keep running
    "running": "running",
    "completed": "completed",
    "cancelled": "aborted",
}


def item_outcome(member) -> tuple[str, str]:
    if member.processed_at is None:
        return "pending", ""
    if member.outcome == "replayed":
        return "replayed", "replayed (bulk replay job)"
    if member.outcome == "skipped_paused":
        return "failed", "skipped: the integration was paused"
    return "resolved", "skipped: no longer failing"


def jobs_to_actions(apps, schema_editor) -> None:
    BulkReplayJob = apps.get_model("recovery", "BulkReplayJob")
    BulkReplayJobItem = apps.get_model("recovery", "BulkReplayJobItem")
    BulkAction = apps.get_model("recovery", "BulkAction")
    BulkActionItem = apps.get_model("recovery", "BulkActionItem")
    for job in BulkReplayJob.objects.order_by("pk").iterator():
        members = list(BulkReplayJobItem.objects.filter(job_id=job.pk).order_by("pk"))
        outcomes = [item_outcome(member) for member in members]
        failed = sum(1 for outcome, _ in outcomes if outcome == "failed")
        requested_by = job.requested_by.username if job.requested_by_id else "unknown"
        action = BulkAction.objects.create(
            status=JOB_STATUS[job.status],
            source="integration_delivery",
            provider="",
            filter_description={**job.filter_description, "bulk_replay_job": job.pk},
            preview={
                "count": job.total,
                "migrated_from": f"bulk replay job #{job.pk}",
                "aborted_by": job.cancelled_by,
            },
            moves_money=False,
            rate_per_second=50.0,
            reason=job.reason,
            created_by=requested_by,
            total=job.total,
            processed=job.processed,
            replayed=job.replayed,
            resolved=job.skipped - failed,
            failed=failed,
            request_id=job.request_id,
            traceparent=job.traceparent,
            started_at=job.created_at,
            finished_at=job.finished_at,
        )
        BulkAction.objects.filter(pk=action.pk).update(created_at=job.created_at)
        BulkActionItem.objects.bulk_create(
            [
                BulkActionItem(
                    action_id=action.pk,
                    source_id=member.item_id,
                    outcome=outcome,
                    detail=detail,
                    processed_at=member.processed_at,
                )
                for member, (outcome, detail) in zip(members, outcomes, strict=True)
            ],
            batch_size=1000,
        )


class Migration(migrations.Migration):
    dependencies = [("recovery", "0012_retention_unredacted_index")]

    operations = [
        migrations.AddField(
            model_name="bulkaction",
            name="request_id",
            field=models.CharField(blank=True, max_length=128),
        ),
        migrations.AddField(
            model_name="bulkaction",
            name="traceparent",
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.RunPython(jobs_to_actions, migrations.RunPython.noop),
    ]
