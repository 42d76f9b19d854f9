from __future__ import annotations

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_q.models import Schedule

from opsconsole.models import AuditEvent
from recovery import services
from recovery.admin import INLINE_REPLAY_LIMIT
from recovery.inbox.bulk_actions import (
    bulk_action_create,
    bulk_action_run,
    bulk_action_transition,
)
from recovery.models import BulkAction, BulkActionItem, Integration, RecoveryItem
from recovery.workers import BulkActionWorker
from tests.helpers import action_post
from tests.opsconsole.factories import UserFactory
from tests.recovery.factories import ParkedItemFactory

CHANGELIST = "/admin/recovery/recoveryitem/"


@pytest.mark.django_db
def test_the_queue_changelist_filters_and_shows_snapshots_readably(integration, admin_client):
    dlq = ParkedItemFactory(integration=integration, status="dlq", failure_code="HTTP_503")
    ParkedItemFactory(integration=integration, status="failed", failure_code="HTTP_400")
    listed = admin_client.get(
        CHANGELIST, {"status": "dlq", "failure_code": "HTTP_503", "age": "1h"}
    )
    assert [i.pk for i in listed.context["cl"].result_list] == [dlq.pk]
    detail = admin_client.get(f"{CHANGELIST}{dlq.pk}/change/")
    assert detail.status_code == 200
    assert b"<pre" in detail.content
    assert b"&quot;body&quot;: &quot;upstream down&quot;" in detail.content


@pytest.mark.django_db
def test_the_replay_action_confirms_the_count_and_needs_a_reason(integration, admin_client):
    items = [
        ParkedItemFactory(integration=integration, status="dlq"),
        ParkedItemFactory(integration=integration, status="failed"),
        ParkedItemFactory(integration=integration, status="succeeded"),
    ]
    ids = [i.pk for i in items]
    confirm = action_post(admin_client, CHANGELIST, "replay_items", ids)
    assert confirm.status_code == 200
    assert confirm.context["selected_count"] == 3
    assert confirm.context["eligible_count"] == 2
    assert RecoveryItem.objects.filter(status="replayed").count() == 0

    no_reason = action_post(admin_client, CHANGELIST, "replay_items", ids, confirm="yes", reason="")
    assert no_reason.status_code == 200
    assert RecoveryItem.objects.filter(status="replayed").count() == 0

    done = action_post(
        admin_client, CHANGELIST, "replay_items", ids, confirm="yes", reason="vendor fixed"
    )
    assert done.status_code == 302
    assert RecoveryItem.objects.filter(status="replayed").count() == 2
    events = AuditEvent.objects.filter(event="platform.integration.recovery.replayed")
    assert {e.reason for e in events} == {"vendor fixed"}
    assert {e.actor for e in events} == {"root"}


@pytest.mark.django_db
def test_a_large_replay_runs_as_a_bulk_action_once_per_item(integration, admin_client):
    items = [
        ParkedItemFactory(integration=integration, status="dlq")
        for _ in range(INLINE_REPLAY_LIMIT + 5)
    ]
    ids = [i.pk for i in items]
    action_post(admin_client, CHANGELIST, "replay_items", ids, confirm="yes", reason="bulk fix")
    action = BulkAction.objects.get()
    assert (action.source, action.total, action.status) == (
        "integration_delivery",
        len(items),
        "running",
    )
    assert action.preview["would_replay"] == len(items)  # the dry run is kept on the action
    assert RecoveryItem.objects.filter(status="replayed").count() == 0  # not inline

    BulkActionWorker(max_seconds=30).run_once(triggered_by="test")
    BulkActionWorker(max_seconds=30).run_once(triggered_by="test")  # a second run finds nothing
    action.refresh_from_db()
    assert (action.status, action.processed, action.replayed, action.resolved) == (
        "completed",
        len(items),
        len(items),
        0,
    )
    assert RecoveryItem.objects.filter(status="replayed", replay_count=1).count() == len(items)
    assert AuditEvent.objects.filter(event="platform.integration.recovery.replayed").count() == len(
        items
    )


@pytest.mark.django_db
def test_an_aborted_bulk_replay_stops_where_it_was(integration, operator):
    items = [ParkedItemFactory(integration=integration, status="dlq") for _ in range(10)]
    action = bulk_action_create(
        source="integration_delivery",
        ids=[i.pk for i in items],
        actor=operator,
        reason="try",
        rate_per_second=50,
    )
    bulk_action_transition(action_id=action.pk, verb="start", actor=operator, reason="go")
    assert bulk_action_run(action_id=action.pk, max_items=4) == 4
    bulk_action_transition(action_id=action.pk, verb="abort", actor=operator, reason="wrong ids")
    BulkActionWorker(max_seconds=5).run_once(triggered_by="test")
    action.refresh_from_db()
    assert (action.status, action.processed) == ("aborted", 4)
    assert RecoveryItem.objects.filter(status="replayed").count() == 4
    assert BulkActionItem.objects.filter(action=action, outcome="pending").count() == 6


@pytest.mark.django_db
def test_bulk_replay_freezes_ids_and_skips_items_that_changed_meanwhile(integration, operator):
    frozen = [ParkedItemFactory(integration=integration, status="dlq") for _ in range(3)]
    action = bulk_action_create(
        source="integration_delivery",
        ids=[i.pk for i in frozen],
        actor=operator,
        reason="r",
        rate_per_second=50,
    )
    services.recovery_item_replay(
        integration_id=integration.pk, item_id=frozen[0].pk, actor=operator, reason="by hand"
    )
    late = ParkedItemFactory(
        integration=integration, status="dlq"
    )  # failed after the action was created: not swept in
    bulk_action_transition(action_id=action.pk, verb="start", actor=operator, reason="go")
    bulk_action_run(action_id=action.pk, max_seconds=10)
    action.refresh_from_db()
    assert (action.total, action.replayed, action.resolved) == (3, 2, 1)
    late.refresh_from_db()
    assert late.status == "dlq"
    assert RecoveryItem.objects.get(pk=frozen[0].pk).replay_count == 1


@pytest.mark.django_db
def test_pausing_from_the_admin_asks_for_a_reason_and_is_audited(integration, admin_client):
    url = "/admin/recovery/integration/"
    confirm = action_post(admin_client, url, "pause_integrations", [integration.pk])
    assert confirm.context["eligible_count"] == 1
    action_post(
        admin_client, url, "pause_integrations", [integration.pk], confirm="yes", reason="outage"
    )
    assert Integration.objects.get(pk=integration.pk).paused is True
    event = AuditEvent.objects.get(event="platform.integration.paused")
    assert (event.reason, event.actor) == ("outage", "root")


@pytest.mark.django_db
def test_setup_schedules_is_idempotent():
    Schedule.objects.create(name="retired_worker", func="recovery.tasks.run_retired_worker")
    # The bulk replay job's worker was folded into the bulk action worker: its schedule goes.
    Schedule.objects.create(
        name="integration_bulk_replay_worker",
        func="recovery.tasks.run_integration_bulk_replay_worker",
    )
    Schedule.objects.create(
        name="custom_report", func="opsconsole.tasks.purge_expired_idempotency_keys"
    )
    call_command("setup_schedules")
    call_command("setup_schedules")
    schedules = Schedule.objects.order_by("name")
    # Every worker's schedule runs its one entry point with the worker's name.
    run = "opsconsole.workers.run"
    assert [(s.name, s.func, s.args) for s in schedules] == [
        ("backup_drill", "opsconsole.tasks.run_backup_drill", None),
        ("booking_hold_expiry_worker", run, "('booking_hold_expiry_worker',)"),
        ("bulk_action_worker", run, "('bulk_action_worker',)"),
        ("bundle_guardrail_worker", run, "('bundle_guardrail_worker',)"),
        ("campaign_dispatcher_worker", run, "('campaign_dispatcher_worker',)"),
        ("campaign_stall_detector", run, "('campaign_stall_detector',)"),
        ("campaign_target_importer", run, "('campaign_target_importer',)"),
        ("catalog_scheduler", run, "('catalog_scheduler',)"),
        ("cleanup_push_tokens", "notifications.tasks.cleanup_push_tokens", None),
        # An operator's own schedule whose task exists is kept; a gone task's is deleted.
        ("custom_report", "opsconsole.tasks.purge_expired_idempotency_keys", None),
        ("dlq_sweeper", run, "('dlq_sweeper',)"),
        ("failure_alerter", run, "('failure_alerter',)"),
        ("fulfillment_processor", run, "('fulfillment_processor',)"),
        ("hosted_recovery_worker", run, "('hosted_recovery_worker',)"),
        ("incident_recorder", run, "('incident_recorder',)"),
        ("integration_delivery_worker", run, "('integration_delivery_worker',)"),
        ("loyalty_nudge_dispatch", run, "('loyalty_nudge_dispatch',)"),
        ("notification_delivery_worker", run, "('notification_delivery_worker',)"),
        ("onboarding_nudges", run, "('onboarding_nudges',)"),
        ("purge_expired_idempotency_keys", "opsconsole.tasks.purge_expired_idempotency_keys", None),
        ("queue_depth_sampler", run, "('queue_depth_sampler',)"),
        ("refund_retry_worker", run, "('refund_retry_worker',)"),
        ("retention_redactor", run, "('retention_redactor',)"),
        ("stripe_event_retry_worker", run, "('stripe_event_retry_worker',)"),
        ("weekly_digest_scheduler", run, "('weekly_digest_scheduler',)"),
    ]


@pytest.mark.django_db
def test_support_staff_use_the_queue_page_by_their_seed_permissions(integration, client):
    item = ParkedItemFactory(integration=integration, status="dlq")
    viewer = UserFactory(username="viewer-staff", groups=["Support viewer"])
    operator = UserFactory(username="operator-staff", groups=["Support operator"])
    for user in (viewer, operator):
        user.is_staff = True
        user.save()

    client.force_login(viewer)
    listed = client.get(CHANGELIST)
    assert listed.status_code == 200
    assert "replay_items" not in listed.context["cl"].model_admin.get_actions(listed.wsgi_request)
    action_post(client, CHANGELIST, "replay_items", [item.pk], confirm="yes", reason="nope")
    item.refresh_from_db()
    assert item.status == "dlq"

    client.force_login(operator)
    action_post(client, CHANGELIST, "replay_items", [item.pk], confirm="yes", reason="fixed")
    item.refresh_from_db()
    assert item.status == "replayed"
    assert AuditEvent.objects.get(event="platform.integration.recovery.replayed").actor == (
        "operator-staff"
    )


@pytest.mark.django_db
def test_a_replay_from_the_dlq_filter_reads_as_done_in_green(integration, admin_client):
    """The replayed item leaves the DLQ filter it was selected under: the message still
    counts it done, with nothing "not done"."""
    item = ParkedItemFactory(integration=integration, status="dlq")
    filtered = f"{CHANGELIST}?status__exact=dlq"
    done = action_post(
        admin_client, filtered, "replay_items", [item.pk], confirm="yes", reason="vendor fixed"
    )
    assert done.status_code == 302
    page = admin_client.get(done["Location"])
    shown = [(m.level_tag, m.message) for m in page.context["messages"]]
    assert shown == [("success", "Replay items: 1 row done.")]


@pytest.mark.django_db
def test_support_staff_read_a_deliverys_attempts_and_a_bulk_actions_items_on_their_pages(
    integration, operator
):
    """The rows a runbook reads below a record are shown to support staff, not only to
    superusers (their access is the console's permission, not the related model's)."""
    from django.test import Client

    from recovery.inbox import bulk_actions
    from recovery.models import DeliveryAttempt
    from tests.recovery.factories import ParkedItemFactory

    item = ParkedItemFactory(integration=integration, status="dlq", attempt_count=1)
    now = timezone.now()
    DeliveryAttempt.objects.create(
        item=item, number=1, outcome="retryable", http_status=503, failure_code="HTTP_503",
        lease_owner="w", started_at=now, finished_at=now,
    )  # fmt: skip
    action = bulk_actions.bulk_action_create(
        actor=operator, reason="x", source="integration_delivery", ids=[item.pk]
    )
    action.items.update(outcome="failed", detail="The integration is paused; resume it")
    staff = [
        UserFactory(username="opal", groups=["Support operator"], is_staff=True),
        UserFactory(username="vera", groups=["Support viewer"], is_staff=True),
    ]
    for user in staff:
        browser = Client()
        browser.force_login(user)
        response = browser.get(f"/admin/recovery/recoveryitem/{item.pk}/change/")
        assert response.status_code == 200
        page = response.content.decode()
        assert "Delivery attempts" in page and "HTTP_503" in page
        bulk = browser.get(f"/admin/recovery/bulkaction/{action.pk}/change/").content.decode()
        assert "The integration is paused; resume it" in bulk
