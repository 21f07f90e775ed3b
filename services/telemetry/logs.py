"""Logs: structured JSON on stderr, correlated with traces, scrubbed as spans are."""

from __future__ import annotations

import logging
import traceback

from opentelemetry import trace

from services.telemetry.privacy import scrub


class TraceContextFilter(logging.Filter):
    """Adds trace_id/span_id of the current span, and scrubs the message."""

    def __init__(self, service_name: str):
        super().__init__()
        self.service_name = service_name

    def filter(self, record: logging.LogRecord) -> bool:
        context = trace.get_current_span().get_span_context()
        record.trace_id = format(context.trace_id, "032x") if context.is_valid else ""
        record.span_id = format(context.span_id, "016x") if context.is_valid else ""
        record.service_name = self.service_name
        record.msg, record.args = scrub(record.getMessage()), None
        if record.exc_info and record.exc_info[0] is not None:
            # Exception messages can quote stored values (a database error quotes the row):
            # keep the type and where it happened, never the message.
            kind, _, tb = record.exc_info
            record.exc_text = "Traceback (most recent call last):\n" + "".join(traceback.format_tb(tb)) + kind.__name__
            record.exc_info = None
        return True


def configure_logging(service: str, level: str = "INFO", json_logs: bool = True) -> None:
    """Structured JSON logs on stderr, correlated with traces."""
    from pythonjsonlogger.json import JsonFormatter

    handler = logging.StreamHandler()
    handler.addFilter(TraceContextFilter(f"dosis-{service}"))
    if json_logs:
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(service_name)s %(trace_id)s %(span_id)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(service_name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("alembic").setLevel(logging.WARNING)
