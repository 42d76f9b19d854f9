"""gunicorn's settings for the web process: its own lines through the project's structured
logging (JSON, or the console renderer under make run), and no access log of its own: the
request middleware writes one line per request with the request id and route."""

import gc
import os
from typing import Any

from opsconsole.http.logs import logging_config

logconfig_dict = logging_config(
    os.environ.get("LOG_LEVEL", "INFO"), os.environ.get("LOG_FORMAT", "json")
)
accesslog = None


def post_worker_init(worker: Any) -> None:
    """The worker has loaded the app: load the request path too (the URLconf, its views and
    serializers, which the first request would import), then take it all out of the garbage
    collector's walk, as the other long-running processes do (opsconsole/workers/heap.py
    says why). Written here, not imported: the hook runs in any gunicorn started from this
    folder, whichever Django project it serves."""
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018  (imports every URL module)
    gc.collect()
    gc.freeze()
