"""gunicorn's settings for the web process: its own lines through the project's structured
logging (JSON, or the console renderer under make run), and no access log of its own: the
request middleware writes one line per request with the request id and route."""

import os
from typing import Any

from opsconsole.http.logs import logging_config

logconfig_dict = logging_config(
    os.environ.get("LOG_LEVEL", "INFO"), os.environ.get("LOG_FORMAT", "json")
)
accesslog = None


def post_worker_init(worker: Any) -> None:
    """The worker has loaded the app: load the request path too, and take it all out of the
    garbage collector's walk (opsconsole.workers.heap)."""
    from opsconsole.workers.heap import load_request_path, settle_after_start

    load_request_path()
    settle_after_start()
