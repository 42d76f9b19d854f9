from __future__ import annotations

from django.db import models
from django.db.models import Q


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"
    WHATSAPP = "whatsapp", "WhatsApp"
    PUSH = "push", "Push"


class CommunicationLog(models.Model):
    """One message sent (or tried) to a customer: which channel, which template, what came back.

    Written for every send, sandbox or real, so "did we tell the customer?" has one answer.
    """

    class Status(models.TextChoices):
        SENT = "sent"
        FAILED = "failed"

    channel = models.CharField(max_length=16, choices=Channel.choices)
    template = models.CharField(max_length=200)
    recipient = models.CharField(max_length=320)
    status = models.CharField(max_length=16, choices=Status.choices)
    provider = models.CharField(max_length=50, help_text="sandbox, or the HTTP adapter's name")
    provider_message_id = models.CharField(max_length=200, blank=True)
    failure_code = models.CharField(max_length=100, blank=True)
    failure_detail = models.TextField(blank=True)
    # What the message was about, e.g. payments.hostedcheckoutsession / 42.
    subject_type = models.CharField(max_length=100)
    subject_id = models.CharField(max_length=64)
    triggered_by = models.CharField(max_length=200)
    idempotency_key = models.CharField(max_length=200)
    context = models.JSONField(default=dict, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    request_id = models.CharField(max_length=128, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        db_table = "communication_log"
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["sent", "failed"]), name="communication_log_status_valid"
            ),
        ]
        indexes = [
            # A subject's timeline: every message about one session, in time order.
            models.Index(
                fields=["subject_type", "subject_id", "id"], name="communication_subject_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel}:{self.template} → {self.recipient} ({self.status})"
