"""Spans of SQL statements: the SQLAlchemy instrumentation's engine tracer, made cheap."""

from __future__ import annotations

import threading

import cachetools
from opentelemetry import trace
from opentelemetry.instrumentation.sqlalchemy import engine as _sqla
from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.trace import SpanKind


class StatementTracer(EngineTracer):
    """The SQLAlchemy instrumentation's engine tracer, made cheap per statement.

    The library computes a statement's span name and attributes (URL, database name, the
    statement's first word) for every execution, and starts a span even inside an unsampled
    trace. Here a statement gets a span only when the current span is recording, with the
    library's own name and attributes computed once per distinct statement (the most
    recently used 1,024 are kept). The library's after-execute and error hooks end the span
    as before. (No sqlcommenter: never enabled.)
    """

    _MAX_STATEMENTS = 1024

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Statements run on several threads (the writer, asyncio.to_thread's pool), and a
        # cachetools cache is not thread-safe.
        self._described: cachetools.LRUCache[str, tuple] = cachetools.LRUCache(self._MAX_STATEMENTS)
        self._lock = threading.Lock()

    def _before_cur_exec(self, conn, cursor, statement, params, context, _executemany):
        # Not recording: an unsampled trace (ParentBased would drop the child anyway) or
        # no trace at all (start-up, migrations), where a root span would explain nothing.
        if not trace.get_current_span().is_recording() or not is_instrumentation_enabled():
            return statement, params
        try:
            with self._lock:
                name, attributes = self._described[statement]  # [] rather than get(): half the cost
        except KeyError:
            name, attributes = described = self._describe(conn, cursor, statement)
            with self._lock:
                self._described[statement] = described
        context._otel_span = self.tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)
        return statement, params

    def _describe(self, conn, cursor, statement) -> tuple[str, dict]:
        attributes, found = _sqla._get_attributes_from_url(
            conn.engine.url, self._sem_conv_opt_in_mode_db, self._sem_conv_opt_in_mode_http
        )
        if not found:
            attributes = _sqla._get_attributes_from_cursor_or_conn(
                self.vendor, conn, cursor, attributes, self._sem_conv_opt_in_mode_db, self._sem_conv_opt_in_mode_http
            )
        db_name = _sqla._get_db_name_from_cursor_or_conn(self.vendor, conn, cursor)
        recorded = _Recorder()
        self._set_db_client_span_attributes(recorded, statement, db_name, attributes)
        return self._operation_name(db_name, statement), recorded.attributes


class _Recorder:
    """Stands in for a span to collect the attributes the library would set on it."""

    def __init__(self):
        self.attributes: dict = {}

    def set_attribute(self, key, value) -> None:
        self.attributes[key] = value
