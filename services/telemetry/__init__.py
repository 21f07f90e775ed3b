"""Telemetry: tracing and metrics set-up (providers.py), DOSIS's own light spans
(light_spans.py), SQL statement spans (statements.py), the OTLP span encoder with the
privacy rules built in (otlp_export.py), what may leave the process (privacy.py) and
logs correlated with traces (logs.py)."""

from services.telemetry.logs import TraceContextFilter, configure_logging
from services.telemetry.privacy import REDACTED, PrivacyFilter, scrub
from services.telemetry.providers import Telemetry, exports

__all__ = [
    "REDACTED", "PrivacyFilter", "Telemetry", "TraceContextFilter", "configure_logging", "exports", "scrub",
]
