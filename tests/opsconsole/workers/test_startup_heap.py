"""The long-running processes take what they loaded at start out of the collector's walk
(opsconsole.workers.heap): a full collection then walks only what serving made, instead of pausing
an event on its way to a partner for the whole of Django's heap."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

# A fresh interpreter, as gunicorn's worker is when its hook runs: the app loaded, nothing
# served yet. It prints what the collector would walk before and after the hook.
PROBE = """
import gc, json, runpy, django
django.setup()
before = len(gc.get_objects())
hooks = runpy.run_path("gunicorn.conf.py")
hooks["post_worker_init"](None)
import sys
print(json.dumps({
    "walked_before": before,
    "walked_after": len(gc.get_objects()),
    "frozen": gc.get_freeze_count(),
    "urlconf_loaded": "opsconsole.urls" in sys.modules,
}))
"""


def run_in_project_folder(source: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`source` in a fresh interpreter started from the project folder, as gunicorn is."""
    done = subprocess.run(
        [sys.executable, "-c", source],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )
    assert done.returncode == 0, done.stderr
    return done


def test_the_web_workers_hook_loads_the_request_path_and_freezes_it() -> None:
    done = run_in_project_folder(PROBE, DJANGO_SETTINGS_MODULE="opsconsole.settings")
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["urlconf_loaded"]
    # Everything alive at the hook is frozen (the URLconf's modules included), and what is
    # left for the collector to walk is a small part of what it walked at start.
    assert seen["frozen"] > seen["walked_before"]
    assert seen["walked_after"] < seen["walked_before"] / 20


def test_each_django_q2_task_worker_freezes_its_heap_when_spawned(monkeypatch) -> None:
    """django-q2 sends post_spawn (not send_robust) in each task worker as it starts: the
    receiver must take its arguments and settle the heap, or every worker dies at birth."""
    import gc

    from django_q.signals import post_spawn

    settled: list[str] = []
    monkeypatch.setattr(gc, "collect", lambda *args: settled.append("collect") or 0)
    monkeypatch.setattr(gc, "freeze", lambda: settled.append("freeze"))
    post_spawn.send(sender="django_q", proc_name="Process-1")
    assert settled == ["collect", "freeze"]


# gunicorn as the Procfile starts it (its settings read from gunicorn.conf.py) at the default
# log level, answering one request and logging one error: the error is written, and the only
# line for the request is the request middleware's (opsconsole.access), not gunicorn's own.
ACCESS_PROBE = """
import datetime
from types import SimpleNamespace
from gunicorn.config import Config
cfg = Config()
for name, value in __import__("runpy").run_path("gunicorn.conf.py").items():
    if name in cfg.settings:
        cfg.set(name, value)
logger = cfg.logger_class(cfg)
request = SimpleNamespace(
    method="POST", uri="/platform/integrations/1/events", path="/platform/integrations/1/events",
    query="", version=(1, 1), headers=[("USER-AGENT", "probe")],
)
response = SimpleNamespace(status="202 Accepted", status_code=202, sent=40, headers=[])
environ = {
    "REMOTE_ADDR": "127.0.0.1", "REQUEST_METHOD": "POST", "RAW_URI": request.uri,
    "PATH_INFO": request.path, "SERVER_PROTOCOL": "HTTP/1.1",
}
logger.access(response, request, environ, datetime.timedelta(milliseconds=3))
logger.error("probe error line")
"""


def test_gunicorn_writes_no_access_line_of_its_own_and_still_logs_errors() -> None:
    done = run_in_project_folder(ACCESS_PROBE, LOG_LEVEL="INFO", LOG_FORMAT="json")
    written = done.stdout + done.stderr
    assert "probe error line" in written
    assert "gunicorn.access" not in written
    assert "/platform/integrations/1/events" not in written
