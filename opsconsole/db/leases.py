"""The lease a worker holds on a row it claimed (opsconsole.workers.claims): who holds it and
until when. An expired lease is free again, which is how a killed worker's rows come back."""

from __future__ import annotations

from django.db import models


class Leased(models.Model):
    lease_owner = models.CharField(max_length=200, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    def release_lease(self) -> None:
        self.lease_owner, self.lease_expires_at = "", None
