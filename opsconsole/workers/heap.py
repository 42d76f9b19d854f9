"""A long-running process takes what it loaded at start out of the garbage collector's walk.

Python's full collection walks every tracked object. A Django process holds some 200,000
from its imports alone (models, admin, URLconf, serializers, the libraries), and each full
collection paused the delivery process and the task workers for 70-120 ms, at random, on
an event on its way to a partner. What a process loads before it starts serving lives as
long as the process: frozen (`gc.freeze`, the permanent generation), it is never walked
again, and a full collection walks only what serving made since. The web process does the
same in gunicorn's post_worker_init hook (gunicorn.conf.py)."""

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
