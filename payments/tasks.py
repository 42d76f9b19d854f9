"""django-q2 entry points: they only wake a worker; the rows hold the state."""

from __future__ import annotations

from typing import Any

from payments.workers import RefundRetryWorker


def run_refund_retry_worker(triggered_by: str = "schedule") -> dict[str, Any]:
    return RefundRetryWorker().run_once(triggered_by=triggered_by).as_dict()
