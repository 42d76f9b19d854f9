from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from notifications.models import Notification
from notifications.services import notification_enqueue
from opsconsole.models import AuditEvent
from recovery.models import ManualReviewItem, RecoveryItem
from recovery.workers import DlqSweeper
from tests.helpers import action_post
from tests.recovery.factories import ParkedItemFactory
from tests.workers import run_worker


@pytest.mark.django_db
def test_failures_older_than_24_hours_go_to_manual_review_once(integration):
    item = ParkedItemFactory(integration=integration, status="dlq", failure_code="HTTP_503")
    RecoveryItem.objects.filter(pk=item.pk).update(
        last_attempt_at=timezone.now() - timedelta(hours=25)
    )
    assert run_worker(DlqSweeper).outcomes == {"manual_review": 1}
    review = ManualReviewItem.objects.get()
    assert (review.source, review.source_id, review.error) == (
        "integration_delivery",
        item.pk,
        "HTTP_503",
    )
    assert run_worker(DlqSweeper).claimed == 0  # already in review: not swept again


@pytest.mark.django_db
def test_recent_transient_failures_are_retried_every_sweep_and_permanent_ones_wait(integration):
    """docs/runbooks/bookings-payments-notifications.md: each sweep retries recent transient
    failures; an occurrence once, so two sweeps racing never retry it twice, and a retry that
    fails again is retried next sweep."""
    transient = ParkedItemFactory(
        integration=integration,
        status="dlq",
        failure_code="HTTP_503",
        last_attempt_at=timezone.now(),
    )
    permanent = ParkedItemFactory(
        integration=integration,
        status="failed",
        failure_code="HTTP_400",
        last_attempt_at=timezone.now(),
    )
    summary = run_worker(DlqSweeper)
    assert summary.outcomes == {"retried": 1, "left": 1}
    assert RecoveryItem.objects.get(pk=transient.pk).status == "replayed"
    assert RecoveryItem.objects.get(pk=permanent.pk).status == "failed"
    replay = AuditEvent.objects.get(event="platform.integration.recovery.replayed")
    assert replay.actor == "worker:dlq_sweeper"
    # The same occurrence seen again (a racing sweep) is not retried twice ...
    RecoveryItem.objects.filter(pk=transient.pk).update(status="dlq")
    assert run_worker(DlqSweeper).outcomes == {"already_retried": 1, "left": 1}
    # ... but when the retry fails again, the next sweep retries the new failure.
    RecoveryItem.objects.filter(pk=transient.pk).update(
        status="dlq", last_attempt_at=timezone.now() + timedelta(seconds=5)
    )
    assert run_worker(DlqSweeper).outcomes == {"retried": 1, "left": 1}


@pytest.mark.django_db
def test_a_dismissed_review_stays_dismissed(integration, operator):
    from recovery.inbox.dlq import manual_review_resolve

    item = ParkedItemFactory(integration=integration, status="dlq", failure_code="HTTP_410")
    RecoveryItem.objects.filter(pk=item.pk).update(
        last_attempt_at=timezone.now() - timedelta(days=2)
    )
    run_worker(DlqSweeper)
    review = ManualReviewItem.objects.get()
    manual_review_resolve(review_id=review.pk, retry=False, actor=operator, reason="partner gone")
    assert run_worker(DlqSweeper).claimed == 0  # not reopened by the next sweep
    assert ManualReviewItem.objects.count() == 1
    assert AuditEvent.objects.filter(event="recovery.failure.resolved").count() == 1


@pytest.mark.django_db
def test_open_reviews_never_stop_newer_dead_rows_from_being_swept(integration):
    old = timezone.now() - timedelta(days=2)
    for _ in range(210):
        ParkedItemFactory(integration=integration, status="dlq", last_attempt_at=old)
    while run_worker(DlqSweeper, batch_size=50).claimed:
        pass
    assert ManualReviewItem.objects.filter(status="open").count() == 210
    newest = ParkedItemFactory(integration=integration, status="dlq", last_attempt_at=old)
    assert run_worker(DlqSweeper, batch_size=50).outcomes == {"manual_review": 1}
    assert ManualReviewItem.objects.filter(source_id=newest.pk).exists()


@pytest.mark.django_db
def test_dead_notifications_are_swept_too():
    notification = notification_enqueue(channel="email", to="a@b.test", template="t", context={})
    Notification.objects.filter(pk=notification.pk).update(
        status="DEAD", last_error="http_400: bad address"
    )
    assert run_worker(DlqSweeper, at=timezone.now() + timedelta(hours=25)).outcomes == {
        "manual_review": 1
    }
    assert ManualReviewItem.objects.get().source == "notification"


@pytest.mark.django_db
def test_the_review_queue_is_resolved_from_the_admin_with_a_reason(integration, admin_client):
    item = ParkedItemFactory(integration=integration, status="dlq", failure_code="HTTP_503")
    RecoveryItem.objects.filter(pk=item.pk).update(
        last_attempt_at=timezone.now() - timedelta(days=2)
    )
    run_worker(DlqSweeper)
    review = ManualReviewItem.objects.get()
    url = "/admin/recovery/manualreviewitem/"
    action_post(admin_client, url, "retry_items", [review.pk], confirm="yes", reason="upstream ok")
    review.refresh_from_db()
    assert (review.status, review.resolution, review.resolved_by) == ("resolved", "retried", "root")
    assert RecoveryItem.objects.get(pk=item.pk).status == "replayed"
    assert AuditEvent.objects.get(event="recovery.manual_review.resolved").reason == "upstream ok"


@pytest.mark.django_db
def test_the_sweeper_is_scheduled_every_15_minutes():
    assert DlqSweeper.schedule_minutes == 15
    from django.core.management import call_command
    from django_q.models import Schedule

    call_command("setup_schedules")
    assert Schedule.objects.get(name="dlq_sweeper").minutes == 15


@pytest.mark.django_db
def test_a_review_whose_failure_was_replayed_elsewhere_closes_at_the_next_sweep(
    integration, operator
):
    from recovery import services

    replayed, still_dead = ParkedItemFactory.create_batch(
        2, integration=integration, status="dlq", failure_code="HTTP_503"
    )
    RecoveryItem.objects.filter(pk__in=[replayed.pk, still_dead.pk]).update(
        last_attempt_at=timezone.now() - timedelta(hours=25)
    )
    run_worker(DlqSweeper)
    assert ManualReviewItem.objects.filter(status="open").count() == 2
    # The operator replays one from its own page, not from the review queue.
    services.recovery_item_replay(
        integration_id=integration.pk, item_id=replayed.pk, actor=operator, reason="fixed"
    )
    run_worker(DlqSweeper)
    closed = ManualReviewItem.objects.get(source_id=replayed.pk)
    assert (closed.status, closed.resolution, closed.resolved_by) == (
        "resolved",
        "closed_elsewhere",
        "worker:dlq_sweeper",
    )
    assert ManualReviewItem.objects.get(source_id=still_dead.pk).status == "open"
    assert AuditEvent.objects.filter(
        event="recovery.manual_review.resolved", object_id=str(closed.pk)
    ).exists()
