"""gunicorn's settings for the web process: its own lines through the project's structured
logging (JSON, or the console renderer under make run), and no access log of its own: the
request middleware writes one line per request with the request id and route."""

import os

from opsconsole.http.logs import logging_config

logconfig_dict = logging_config(
    os.environ.get("LOG_LEVEL", "INFO"), os.environ.get("LOG_FORMAT", "json")
)
accesslog = None
