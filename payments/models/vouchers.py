"""Vouchers, their redemptions and refusals, and the stations allowed to redeem them."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone
from django_fsm import ConcurrentTransitionMixin, FSMField, transition


class Voucher(ConcurrentTransitionMixin, models.Model):
    """A voucher redeemable at the stations in its scope, once
    (docs/runbooks/station-redeem-anomalies.md)."""

    class Status(models.TextChoices):
        ISSUED = "issued"
        REDEEMED = "redeemed"
        VOID = "void"

    code = models.CharField(max_length=32, unique=True)
    description = models.CharField(max_length=200)
    value = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, default="EUR")
    # Comma-separated station ids, or "*" for every station.
    station_scope = models.CharField(max_length=500, default="*")
    status = FSMField(max_length=16, choices=Status.choices, default=Status.ISSUED, protected=True)
    customer_email = models.EmailField(blank=True)
    replaces = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="replacement"
    )
    void_reason = models.TextField(blank=True)
    issued_at = models.DateTimeField(auto_now_add=True)
    # Not redeemable after this (None: no end); the loyalty nudge reminds the customer first.
    expires_at = models.DateTimeField(null=True, blank=True)
    redeemed_at = models.DateTimeField(null=True, blank=True)
    redeemed_station = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["issued", "redeemed", "void"]), name="voucher_status_valid"
            )
        ]
        # The customer case view finds a customer's vouchers by email (recovery.cases).
        indexes = [models.Index(Lower("customer_email"), name="voucher_customer_email_idx")]

    def __str__(self) -> str:
        # Not the code: titles and breadcrumbs are seen by staff without personal data.
        return f"voucher #{self.pk} ({self.status})"

    def in_scope(self, station_id: str) -> bool:
        scope = [s.strip() for s in self.station_scope.split(",") if s.strip()]
        return "*" in scope or station_id in scope

    def state(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "station_scope": self.station_scope,
            "redeemed_station": self.redeemed_station,
            "redeemed_at": self.redeemed_at.isoformat() if self.redeemed_at else None,
        }

    @transition(field=status, source=Status.ISSUED, target=Status.REDEEMED)
    def redeem(self, *, station_id: str) -> None:
        self.redeemed_at = timezone.now()
        self.redeemed_station = station_id

    @transition(field=status, source=[Status.ISSUED, Status.REDEEMED], target=Status.VOID)
    def void(self, *, reason: str) -> None:
        self.void_reason = reason


class VoucherRedemption(models.Model):
    """The one redemption of a voucher: the unique voucher column is the guarantee."""

    voucher = models.OneToOneField(Voucher, on_delete=models.PROTECT, related_name="redemption")
    station_id = models.CharField(max_length=100)
    redeemed_by = models.CharField(max_length=150)
    request_id = models.CharField(max_length=128, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.voucher_id} at {self.station_id}"


class VoucherRedemptionFailure(models.Model):
    """A redemption a station was refused (already redeemed, out of scope, void): the
    anomalies the station runbook investigates (docs/runbooks/station-redeem-anomalies.md),
    kept for the failure inbox."""

    code = models.CharField(max_length=32)
    voucher = models.ForeignKey(
        Voucher, null=True, blank=True, on_delete=models.SET_NULL, related_name="refusals"
    )
    station_id = models.CharField(max_length=100)
    error_code = models.CharField(max_length=100)
    message = models.TextField()
    actor = models.CharField(max_length=150)
    request_id = models.CharField(max_length=128, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"refusal #{self.pk} at {self.station_id}: {self.error_code}"


class StationCredential(models.Model):
    """A station's API credential: the station a redemption happens at comes from here,
    never from the request body. Only the key's SHA-256 is stored; the key is shown once."""

    station_id = models.CharField(max_length=100, db_index=True)
    label = models.CharField(max_length=200, blank=True)
    # The key's first characters, to find its row without scanning every hash.
    key_prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64)
    created_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.CharField(max_length=150, blank=True)
    revoked_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["station_id", "-id"]

    def __str__(self) -> str:
        return f"{self.station_id} ({self.key_prefix}…)"

    @property
    def active(self) -> bool:
        return self.revoked_at is None
