"""Structured JSON logging: structlog for our code, the same renderer for stdlib loggers."""

from __future__ import annotations

import logging
import logging.config

import structlog

SERVICE_NAME = "smplat-api"


def add_service_and_trace_id(
    logger: object, method_name: str, event_dict: structlog.types.EventDict
) -> structlog.types.EventDict:
    """Every line says which service wrote it (`service=smplat-api`) and carries the
    W3C trace id, so log search and trace search meet."""
    event_dict.setdefault("service", SERVICE_NAME)
    traceparent = event_dict.get("traceparent")
    if isinstance(traceparent, str) and traceparent.count("-") == 3:
        event_dict.setdefault("trace_id", traceparent.split("-")[1])
    return event_dict


_SHARED_PROCESSORS: list[structlog.types.Processor] = [
    structlog.contextvars.merge_contextvars,
    add_service_and_trace_id,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


LOG_FORMATS = ("json", "console")


class ExpectedRefusalFilter(logging.Filter):
    """A refused page (PermissionDenied: a viewer opening an operator's form) is an expected
    answer, logged by Django as one warning line: without its traceback, which would bury
    the errors that matter under pages of frames."""

    def filter(self, record: logging.LogRecord) -> bool:
        from django.core.exceptions import PermissionDenied

        if record.exc_info and isinstance(record.exc_info[1], PermissionDenied):
            record.exc_info = None
            record.exc_text = None
        return True


def _renderer(log_format: str) -> structlog.types.Processor:
    if log_format not in LOG_FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
    if log_format == "console":
        # For people at a terminal (make run): one readable line per event, same fields.
        return structlog.dev.ConsoleRenderer(colors=False)
    return structlog.processors.JSONRenderer()


def logging_config(level: str, log_format: str = "json") -> dict[str, object]:
    """The stdlib logging setup: every logger, ours, Django's and gunicorn's, through one
    structlog formatter (gunicorn.conf.py hands the same dict to gunicorn)."""
    handler = {"class": "logging.StreamHandler", "formatter": "structured"}
    quiet = {"handlers": ["console"], "level": level, "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"expected_refusals": {"()": ExpectedRefusalFilter}},
        "formatters": {
            "structured": {
                "()": structlog.stdlib.ProcessorFormatter,
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    _renderer(log_format),
                ],
                "foreign_pre_chain": _SHARED_PROCESSORS,
            }
        },
        "handlers": {"console": handler},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.db.backends": {"level": "WARNING"},
            "django.request": {"filters": ["expected_refusals"]},
            "gunicorn.error": quiet,
            "gunicorn.access": quiet,
        },
    }


def configure_logging(level: str, service: str = SERVICE_NAME, log_format: str = "json") -> None:
    global SERVICE_NAME
    SERVICE_NAME = service
    structlog.configure(
        processors=[
            *_SHARED_PROCESSORS,
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    logging.config.dictConfig(logging_config(level, log_format))
