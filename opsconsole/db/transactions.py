"""Retry a whole transaction when PostgreSQL aborts it for a deadlock or a serialization failure.

Exponential backoff, 3 tries (docs/runbooks/bookings-payments-notifications.md). The wrapped
function must open its own transaction (it is re-run from the start), so it must not be called
inside an outer atomic block.
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import structlog
from django.db import OperationalError, connection

logger = structlog.get_logger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

DEADLOCK_DETECTED = "40P01"
SERIALIZATION_FAILURE = "40001"
RETRYABLE_SQLSTATES = frozenset({DEADLOCK_DETECTED, SERIALIZATION_FAILURE})


def is_retryable_transaction_error(exc: BaseException) -> bool:
    cause = exc.__cause__
    sqlstate = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
    return sqlstate in RETRYABLE_SQLSTATES


def retry_on_deadlock(
    max_tries: int = 3, base_delay_seconds: float = 0.1
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            for attempt in range(max_tries):
                try:
                    return func(*args, **kwargs)
                except OperationalError as exc:
                    if attempt == max_tries - 1 or not is_retryable_transaction_error(exc):
                        raise
                    if connection.in_atomic_block:
                        raise  # an outer transaction is aborted too; only its owner can retry
                    delay = base_delay_seconds * (2**attempt) + random.uniform(
                        0, base_delay_seconds
                    )
                    logger.warning(
                        "transaction_retried",
                        function=func.__qualname__,
                        attempt=attempt + 1,
                        sqlstate=getattr(exc.__cause__, "sqlstate", None),
                        delay_seconds=round(delay, 3),
                    )
                    time.sleep(delay)
            raise AssertionError("unreachable")

        return wrapper

    return decorate
