"""A long-running process takes what it loaded at start out of the garbage collector's walk.

Python's full collection walks every tracked object. A Django process holds about a million
from its imports alone (models, admin, URLconf, serializers, the libraries), so each full
collection paused the delivery process and the task workers for 70-120 ms, at random, on
an event on its way to a partner. What a process loads before it starts serving lives as
long as the process: frozen (`gc.freeze`, the permanent generation), it is never walked
again, and a full collection walks only what serving made since."""

from __future__ import annotations

import gc


def settle_after_start() -> None:
    """Collect what starting left behind, then freeze what is alive: call it once, after the
    process has loaded everything it serves with and before it serves."""
    gc.collect()
    gc.freeze()


def settle_task_worker(sender: object, proc_name: str, **kwargs: object) -> None:
    """django-q2's post_spawn: a task worker process has started."""
    settle_after_start()


def load_request_path() -> None:
    """Import what the first request would (the URLconf, its views and serializers), so it
    is loaded before `settle_after_start` and not by a waiting request."""
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018  (imports every URL module)
