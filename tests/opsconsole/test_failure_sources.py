"""The failure-source registry: every app's failures are registered by the app itself."""

from __future__ import annotations

import dataclasses

import pytest

from opsconsole.failures import failure_sources


def test_each_app_registers_its_own_failure_sources():
    by_app = {
        source.name: (source.app, source.failing().model._meta.app_label)
        for source in failure_sources.all_sources()
    }
    assert by_app == {
        "integration_delivery": ("recovery", "recovery"),
        "hosted_session": ("payments", "payments"),
        "refund": ("payments", "payments"),
        "webhook_failure": ("payments", "payments"),
        "redemption": ("payments", "payments"),
        "offline_refund": ("payments", "payments"),
        "unapplied_payment": ("payments", "payments"),
        "notification": ("notifications", "notifications"),
        "campaign_target": ("notifications", "notifications"),
        "cancellation": ("bookings", "bookings"),
        "fulfillment": ("bookings", "bookings"),
        "catalog_change": ("bookings", "bookings"),
        "bundle": ("bookings", "bookings"),
        "nudge": ("bookings", "bookings"),
    }


def test_a_source_name_cannot_be_taken_over_by_another_registration():
    refund = failure_sources.get("refund")
    impostor = dataclasses.replace(refund, replay=lambda *args: "nothing")
    with pytest.raises(ValueError, match="registered already"):
        failure_sources.register(impostor)
    assert failure_sources.get("refund") is refund
    failure_sources.register(refund)  # the same declaration again is harmless


def test_the_sweeper_sweeps_the_sources_that_declare_dead_letters():
    from recovery.inbox.dlq import swept_sources

    assert sorted(s.name for s in swept_sources()) == [
        "integration_delivery",
        "notification",
        "refund",
    ]
