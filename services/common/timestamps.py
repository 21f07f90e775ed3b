"""google.protobuf.Timestamp ↔ aware UTC datetimes, the one conversion every service uses."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from google.protobuf import timestamp_pb2

UTC = timezone.utc
# The range google.protobuf.Timestamp allows: 0001-01-01 to 9999-12-31.
_MIN_SECONDS, _MAX_SECONDS = -62_135_596_800, 253_402_300_799


def to_message(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    """The Timestamp of an aware datetime; None stays None (the field is left unset)."""
    if value is None:
        return None
    message = timestamp_pb2.Timestamp()
    message.FromDatetime(value)
    return message


def from_message(message: timestamp_pb2.Timestamp) -> datetime | None:
    """Microsecond precision (what both databases store, so equal pushes compare equal);
    None when outside what a Timestamp may hold."""
    if not (_MIN_SECONDS <= message.seconds <= _MAX_SECONDS and 0 <= message.nanos <= 999_999_999):
        return None
    return datetime.fromtimestamp(message.seconds, UTC) + timedelta(microseconds=message.nanos // 1000)
