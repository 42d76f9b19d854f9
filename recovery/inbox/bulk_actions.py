"""Bulk replay from the failure inbox as a tracked object (BulkAction).

The filter is frozen into an id set at creation, with a dry run (count, sample, predicted
transition or guard verdict per item). Actions that move money wait for a second operator's
approval. A running action replays at most `rate_per_second` items a second, each item at
most once (an item is marked `processing` before its replay and never picked again), and
can be paused, resumed and aborted. Every action is kept."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import structlog
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from opsconsole.evidence import audit
from opsconsole.failures import failure_sources
from opsconsole.failures.failure_sources import FailureSource
from opsconsole.http.context import current_request_id, current_traceparent
from opsconsole.http.errors import ApplicationError, Conflict, InvalidInput, NotFound
from opsconsole.workers import wakes
from opsconsole.workers.wakes import batched_wakes
from recovery.inbox.groups import failure_group, failure_resolve, open_rows
from recovery.inbox.replay_guard import guarded_replay
from recovery.models import BulkAction, BulkActionItem, ProviderPacer

logger = structlog.get_logger(__name__)

PROCESSING = "processing"
UNFINISHED = (BulkActionItem.Outcome.PENDING, PROCESSING)
SAMPLE_SIZE = 10
MAX_RATE_PER_SECOND = 50.0


class BulkActionNotFound(NotFound):
    code = "OPS-404-BULK-ACTION-NOT-FOUND"
    default_message = "Bulk action not found."


class BulkActionConflict(Conflict):
    code = "OPS-409-BULK-ACTION-CONFLICT"


class SecondOperatorRequired(Conflict):
    code = "OPS-409-SECOND-OPERATOR-REQUIRED"
    default_message = "An action that moves money must be approved by a different operator."


class BulkActionInvalid(InvalidInput):
    code = "OPS-400-INVALID-PAYLOAD"


def _state(action: BulkAction) -> dict[str, Any]:
    return {
        "status": action.status,
        "processed": action.processed,
        "total": action.total,
        "rate_per_second": action.rate_per_second,
    }


@transaction.atomic
def bulk_action_create(
    *,
    actor: audit.Actor,
    reason: str,
    fingerprint: str = "",
    source: str = "",
    ids: list[int] | None = None,
    rate_per_second: float = 1.0,
    filter_description: dict[str, Any] | None = None,
    mode: str = BulkAction.Mode.REPLAY,
) -> BulkAction:
    """Freeze the matching open failures and dry-run them; nothing is replayed yet. In
    `resolve` mode every item is to be closed with the reason instead, none replayed (a
    group known to be moot: the partner confirmed it has the events).

    `filter_description` records how the operator chose the rows (an admin changelist's
    filter); by default the fingerprint or the ids."""
    if mode not in BulkAction.Mode.values:
        raise BulkActionInvalid(
            f"mode must be one of {BulkAction.Mode.values}.",
            details={"fields": {"mode": ["Unknown mode."]}},
        )
    if not 0 < rate_per_second <= MAX_RATE_PER_SECOND:
        raise BulkActionInvalid(
            f"rate_per_second must be above 0 and at most {MAX_RATE_PER_SECOND}.",
            details={"fields": {"rate_per_second": ["Out of range."]}},
        )
    if fingerprint:
        group = failure_group(fingerprint)
        if group is None:
            raise BulkActionInvalid(
                "No open failures have this fingerprint.",
                details={"fields": {"fingerprint": ["Unknown or already empty."]}},
            )
        source, provider = group.source, group.provider
        frozen = group.source_ids()
    else:
        if source not in failure_sources.names() or not ids:
            raise BulkActionInvalid(
                "Give a fingerprint, or a source and ids.",
                details={"fields": {"source": [f"One of {failure_sources.names()}."]}},
            )
        provider = ""
        frozen = sorted(
            open_rows(failure_sources.get(source)).filter(pk__in=ids).values_list("pk", flat=True)
        )
    failure_source = failure_sources.get(source)
    rows = {row.pk: row for row in open_rows(failure_source).filter(pk__in=frozen)}
    sample: list[dict[str, Any]] = []
    would_resolve = 0
    refused: dict[str, int] = {}
    for pk in frozen:
        row = rows.get(pk)
        verdict: str | None
        blocked: str | None = None
        if row is None:
            verdict = "no longer failing"
        elif mode == BulkAction.Mode.RESOLVE:
            verdict = reason
        else:
            verdict = failure_source.guard(row)
            if not verdict and failure_source.blocked is not None:
                blocked = failure_source.blocked(row)
        would_resolve += 1 if verdict else 0
        if blocked:
            refused[blocked] = refused.get(blocked, 0) + 1
        if len(sample) < SAMPLE_SIZE:
            if verdict:
                predicted = f"resolve: {verdict}"
            elif blocked:
                predicted = f"refused: {blocked}"
            else:
                predicted = failure_source.predicted(row)
            sample.append({"source_id": pk, "predicted": predicted})
    action = BulkAction.objects.create(
        status=BulkAction.Status.AWAITING_APPROVAL
        if failure_source.moves_money
        else BulkAction.Status.READY,
        mode=mode,
        source=source,
        provider=provider,
        filter_description=filter_description
        or ({"fingerprint": fingerprint} if fingerprint else {"ids": frozen}),
        preview={
            "count": len(frozen),
            "would_replay": len(frozen) - would_resolve - sum(refused.values()),
            "would_resolve": would_resolve,
            "would_be_refused": refused,
            "sample": sample,
        },
        moves_money=failure_source.moves_money,
        rate_per_second=rate_per_second,
        reason=reason,
        created_by=audit.actor_label(actor),
        total=len(frozen),
        request_id=current_request_id(),
        traceparent=current_traceparent(),
    )
    BulkActionItem.objects.bulk_create(
        [BulkActionItem(action=action, source_id=pk) for pk in frozen]
    )
    audit.record(
        "recovery.bulk_action.created",
        obj=action,
        after={**_state(action), "preview": action.preview},
        actor=actor,
        reason=reason,
    )
    return action


def _locked(action_id: int) -> BulkAction:
    action = BulkAction.objects.select_for_update().filter(pk=action_id).first()
    if action is None:
        raise BulkActionNotFound()
    return action


@transaction.atomic
def bulk_action_transition(
    *,
    action_id: int,
    verb: str,
    actor: audit.Actor,
    reason: str,
    rate_per_second: float | None = None,
) -> BulkAction:
    """approve | start | pause | resume | abort, each audited with who and why."""
    action = _locked(action_id)
    before = _state(action)
    name = audit.actor_label(actor)
    try:
        if verb == "approve":
            if action.status == BulkAction.Status.AWAITING_APPROVAL and name == action.created_by:
                raise SecondOperatorRequired(details={"created_by": action.created_by})
            action.approve(approved_by=name)
        elif verb in ("start", "resume"):
            action.start()
        elif verb == "pause":
            action.pause()
        elif verb == "abort":
            action.abort()
        else:
            raise BulkActionInvalid(f"Unknown verb {verb!r}.")
    except ApplicationError:
        raise
    except Exception as exc:  # django-fsm's TransitionNotAllowed
        raise BulkActionConflict(
            f"Cannot {verb} a bulk action that is {action.status}.",
            details={"status": action.status},
        ) from exc
    if rate_per_second is not None:
        action.rate_per_second = rate_per_second
    action.save()
    audit.record(
        f"recovery.bulk_action.{verb}",
        obj=action,
        before=before,
        after=_state(action),
        actor=actor,
        reason=reason,
    )
    if action.status == BulkAction.Status.RUNNING:
        transaction.on_commit(wake_bulk_action_worker)
    return action


def wake_bulk_action_worker() -> None:
    wakes.wake("bulk_action_worker", "start")


def _next_item(action_id: int) -> BulkActionItem | None:
    """Claim the next pending item, or None when the action is no longer running."""
    with transaction.atomic():
        action = BulkAction.objects.select_for_update().get(pk=action_id)
        if action.status != BulkAction.Status.RUNNING:
            return None
        item = (
            BulkActionItem.objects.select_for_update(skip_locked=True)
            .filter(action_id=action_id, outcome=BulkActionItem.Outcome.PENDING)
            .order_by("id")
            .first()
        )
        if item is None:
            _complete(action)
            return None
        # Marked before the replay, committed: a crash after this never replays it again.
        BulkActionItem.objects.filter(pk=item.pk).update(outcome=PROCESSING)
        return item


def _complete(action: BulkAction) -> None:
    """The running action (locked by the caller) has no item left: completed, audited."""
    action.complete()
    action.save()
    audit.record(
        "recovery.bulk_action.completed",
        obj=action,
        after=_state(action),
        actor="worker:bulk_action_worker",
    )


def _finish_item(action_id: int, item: BulkActionItem, outcome: str, detail: str) -> None:
    counters: dict[str, str] = {
        BulkActionItem.Outcome.REPLAYED: "replayed",
        BulkActionItem.Outcome.RESOLVED: "resolved",
        BulkActionItem.Outcome.FAILED: "failed",
    }
    counter = counters[outcome]
    with transaction.atomic():
        BulkActionItem.objects.filter(pk=item.pk).update(
            outcome=outcome, detail=detail[:2000], processed_at=timezone.now()
        )
        BulkAction.objects.filter(pk=action_id).update(
            processed=F("processed") + 1, **{counter: F(counter) + 1}
        )
        # The last item completes the action in its commit: never "all done" while running.
        if not BulkActionItem.objects.filter(action_id=action_id, outcome__in=UNFINISHED).exists():
            action = BulkAction.objects.select_for_update().get(pk=action_id)
            if action.status == BulkAction.Status.RUNNING:
                _complete(action)


INTERRUPTED = (
    "interrupted: the worker died during this replay, so it may or may not have happened; "
    "check the row and replay it on its own if it still fails"
)


def _recover_interrupted_items(action_id: int, source: FailureSource) -> int:
    """Items a killed run left `processing`. Only one run per provider works at a time (the
    pacing lock), so any found here are orphans. They are never replayed again blindly (a
    refund could be paid twice): one that no longer fails is resolved, the rest are failed
    with a note for the operator."""
    orphans = list(
        BulkActionItem.objects.filter(
            action_id=action_id, outcome=BulkActionItem.Outcome.PROCESSING
        ).order_by("id")
    )
    for item in orphans:
        still_failing = open_rows(source).filter(pk=item.source_id).exists()
        if still_failing:
            _finish_item(action_id, item, BulkActionItem.Outcome.FAILED, INTERRUPTED)
        else:
            _finish_item(
                action_id,
                item,
                BulkActionItem.Outcome.RESOLVED,
                "no longer failing (run interrupted)",
            )
    return len(orphans)


# The replays' wakes (the delivery worker's, for one) are sent once per this many items, or
# once a second at slower paces, not once per item.
WAKE_BATCH_ITEMS = 100
WAKE_BATCH_SECONDS = 1.0


def bulk_action_run(
    *, action_id: int, max_seconds: float = 50.0, max_items: int | None = None
) -> int:
    """Work through the action at its pace for up to `max_seconds` (and at most `max_items`
    items); returns items done."""
    action = BulkAction.objects.get(pk=action_id)
    source = failure_sources.get(action.source)
    actor = f"bulk_action:{action.pk} ({action.created_by})"
    interval = 1.0 / action.rate_per_second
    deadline = time.monotonic() + max_seconds
    done = _recover_interrupted_items(action_id, source)
    with batched_wakes() as wake_batch:
        last_flush, since_flush = time.monotonic(), 0
        while time.monotonic() < deadline and (max_items is None or done < max_items):
            started = time.monotonic()
            item = _next_item(action_id)
            if item is None:
                break
            _run_item(action, source, item, actor)
            done += 1
            since_flush += 1
            if since_flush >= WAKE_BATCH_ITEMS or started - last_flush >= WAKE_BATCH_SECONDS:
                wake_batch.flush()
                last_flush, since_flush = time.monotonic(), 0
            # Pace the provider: never faster than rate_per_second, however quick the replays.
            pause = interval - (time.monotonic() - started)
            if pause > 0:
                time.sleep(pause)
    return done


def _run_item(action: BulkAction, source: FailureSource, item: BulkActionItem, actor: str) -> None:
    row = open_rows(source).filter(pk=item.source_id).first()
    if row is None:
        _finish_item(action.pk, item, BulkActionItem.Outcome.RESOLVED, "no longer failing")
    elif action.mode == BulkAction.Mode.RESOLVE:
        failure_resolve(source=source.name, source_id=row.pk, actor=actor, reason=action.reason)
        _finish_item(action.pk, item, BulkActionItem.Outcome.RESOLVED, "resolved: " + action.reason)
    else:
        try:
            replayed, detail = guarded_replay(source, row, actor, action.reason)
            outcome = (
                BulkActionItem.Outcome.REPLAYED if replayed else BulkActionItem.Outcome.RESOLVED
            )
            _finish_item(action.pk, item, outcome, detail)
        except ApplicationError as exc:
            _finish_item(action.pk, item, BulkActionItem.Outcome.FAILED, exc.message)
        except Exception as exc:
            logger.exception("bulk_action_item_failed", action_id=action.pk, id=row.pk)
            _finish_item(action.pk, item, BulkActionItem.Outcome.FAILED, repr(exc))


@contextmanager
def provider_pacing_lock(provider: str, *, hold_seconds: float = 300.0) -> Iterator[bool]:
    """One pacer per provider across every worker process: a lease row (ProviderPacer),
    taken when free or expired and given back at the end. A pacer killed mid-run holds it
    until `hold_seconds` have passed (keep it above the longest run)."""
    owner = uuid.uuid4().hex
    now = timezone.now()
    lease = {"owner": owner, "expires_at": now + timedelta(seconds=hold_seconds)}
    acquired = _take_pacer_lease(provider, lease, now)
    try:
        yield acquired
    finally:
        if acquired:
            ProviderPacer.objects.filter(provider=provider, owner=owner).delete()


def _take_pacer_lease(provider: str, lease: dict[str, Any], now: datetime) -> bool:
    """Take an expired lease over (an UPDATE that re-checks the expiry after waiting on a
    racing taker), or insert a new one (the primary key lets one racing insert win)."""
    if ProviderPacer.objects.filter(provider=provider, expires_at__lt=now).update(**lease):
        return True
    try:
        with transaction.atomic():
            ProviderPacer.objects.create(provider=provider, **lease)
    except IntegrityError:
        return False  # a live lease of another process
    return True
