"""gunicorn's settings for the web process: its own lines through the project's structured
logging (JSON, or the console renderer under make run), and no access log of its own: the
request middleware writes one line per request with the request id and route."""

import gc
import os
from typing import Any

from gunicorn.glogging import Logger

from opsconsole.http.logs import logging_config

logconfig_dict = logging_config(
    os.environ.get("LOG_LEVEL", "INFO"), os.environ.get("LOG_FORMAT", "json")
)
accesslog = None


class LoggerWithoutAccessLog(Logger):
    """gunicorn's logger without gunicorn's access line. The request middleware writes each
    request's line, with its request id and route (opsconsole.access); gunicorn counts its own
    access log as on whenever it is given a logging dict, and wrote a second line for every
    request, built from the request's headers."""

    @property
    def access_log_enabled(self) -> bool:
        return False

    def access(self, *args: Any, **kwargs: Any) -> None:
        return None


logger_class = LoggerWithoutAccessLog


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
