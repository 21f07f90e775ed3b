"""Validation of a pushed DossierStatus: every bad field at once, then canonical values.

The result is a plain dict of the store's columns (see services.store.models.Dossier),
so the hot path builds no ORM objects and the CSV path can reuse the same rules.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

from dosis.v1 import dossier_status_pb2 as pb
from services.common import errors
from services.common.enterprise_number import InvalidEnterpriseNumber, canonical_enterprise_number
from services.common.errors import Violation

UTC = timezone.utc
MAX_FUTURE = timedelta(minutes=5)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PRODUCT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$")
MAX_ROLES = 100
MAX_ROLE_LENGTH = 200


# The range google.protobuf.Timestamp allows: 0001-01-01 to 9999-12-31.
_MIN_SECONDS, _MAX_SECONDS = -62_135_596_800, 253_402_300_799


def _timestamp(ts) -> datetime | None:
    """Microsecond precision (what both databases store, so equal pushes compare equal);
    None when outside what a Timestamp may hold."""
    if not (_MIN_SECONDS <= ts.seconds <= _MAX_SECONDS and 0 <= ts.nanos <= 999_999_999):
        return None
    return datetime.fromtimestamp(ts.seconds, UTC) + timedelta(microseconds=ts.nanos // 1000)


# Unicode category Cc: C0 controls, DEL and C1 controls. A regex: this runs per field per row.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_NEWLINE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")
_WHITESPACE = re.compile(r"\s")
_PHASES = frozenset(pb.StatusPhase.values()) - {pb.STATUS_PHASE_UNSPECIFIED}
_CODES = frozenset(pb.StatusCode.values()) - {pb.STATUS_CODE_UNSPECIFIED}


def has_control_characters(text: str, allow_newline: bool = False) -> bool:
    """NUL and other control characters: PostgreSQL refuses NUL, and no label needs them."""
    return (_CONTROL_BUT_NEWLINE if allow_newline else _CONTROL).search(text) is not None


def _is_https_url(url: str) -> bool:
    if len(url) > 2048 or not url.startswith("https://") or _WHITESPACE.search(url) or _CONTROL.search(url):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return False
    return bool(parts.hostname)


def validate_status(status: pb.DossierStatus, prefix: str = "status", now: datetime | None = None) -> dict:
    """Column values of a valid status, or INVALID_ARGUMENT naming every bad field."""
    now = now or datetime.now(UTC)
    bad: list[Violation] = []

    def violation(field: str, reason: str, description: str) -> None:
        bad.append(Violation(f"{prefix}.{field}" if prefix else field, reason, description))

    enterprise = ""
    try:
        enterprise = canonical_enterprise_number(status.enterprise_number)
    except InvalidEnterpriseNumber as exc:
        violation("enterprise_number", "INVALID_ENTERPRISE_NUMBER", str(exc))

    if not status.product_id:
        violation("product_id", "INVALID_PRODUCT_ID", "is required")
    elif not _PRODUCT_ID.match(status.product_id):
        violation("product_id", "INVALID_PRODUCT_ID", "must be 1-128 letters, digits or ._:-")

    if not 1 <= len(status.dossier_id) <= 128 or not status.dossier_id.isprintable():
        violation("dossier_id", "INVALID_DOSSIER_ID", "must be 1-128 printable characters")

    if status.phase not in _PHASES:
        violation("phase", "INVALID_PHASE", "must be one of the StatusPhase values, not UNSPECIFIED")
    if status.status not in _CODES:
        violation("status", "INVALID_STATUS", "must be one of the StatusCode values, not UNSPECIFIED")

    if len(status.detail_status) > 200:
        violation("detail_status", "FIELD_TOO_LONG", "must be at most 200 characters")
    if has_control_characters(status.detail_status):
        violation("detail_status", "CONTROL_CHARACTERS", "must not contain control characters")

    status_time = None
    if not status.HasField("status_time"):
        violation("status_time", "MISSING_STATUS_TIME", "is required")
    elif (status_time := _timestamp(status.status_time)) is None:
        violation("status_time", "INVALID_TIMESTAMP", "is not a valid timestamp (years 1-9999)")
    else:
        if status_time > now + MAX_FUTURE:
            violation("status_time", "STATUS_TIME_IN_FUTURE", "must not be more than 5 minutes in the future")

    ref = status.reference
    if not (ref.url or ref.email or ref.contact):
        violation("reference", "MISSING_REFERENCE", "needs at least one of url, email, contact")
    if ref.url and not _is_https_url(ref.url):
        violation("reference.url", "INVALID_REFERENCE_URL", "must be an https URL of at most 2048 characters")
    if ref.email and (len(ref.email) > 254 or not _EMAIL.match(ref.email) or has_control_characters(ref.email)):
        violation("reference.email", "INVALID_REFERENCE_EMAIL", "must be an e-mail address")
    if len(ref.contact) > 500:
        violation("reference.contact", "FIELD_TOO_LONG", "must be at most 500 characters")
    if has_control_characters(ref.contact, allow_newline=True):
        violation("reference.contact", "CONTROL_CHARACTERS", "must not contain control characters but new lines")

    roles = sorted(set(status.required_roles))
    if not roles and not status.public:
        violation("required_roles", "MISSING_REQUIRED_ROLES", "must name at least one role unless public")
    if len(roles) > MAX_ROLES:
        violation("required_roles", "TOO_MANY_ROLES", f"at most {MAX_ROLES} roles")
    for i, role in enumerate(status.required_roles):
        if not role.strip() or len(role) > MAX_ROLE_LENGTH or not role.isprintable():
            violation(f"required_roles[{i}]", "INVALID_ROLE", f"must be 1-{MAX_ROLE_LENGTH} printable characters")

    if len(status.action) > 200:
        violation("action", "FIELD_TOO_LONG", "must be at most 200 characters")
    if has_control_characters(status.action):
        violation("action", "CONTROL_CHARACTERS", "must not contain control characters")
    if status.action_required and not status.action.strip():
        violation("action", "MISSING_ACTION", "is required when action_required is set")

    visible_until = None
    if status.HasField("visible_until"):
        visible_until = _timestamp(status.visible_until)
        if visible_until is None:
            violation("visible_until", "INVALID_TIMESTAMP", "is not a valid timestamp (years 1-9999)")
        elif visible_until <= now:
            violation("visible_until", "VISIBLE_UNTIL_IN_PAST", "must be in the future (after it the dossier is purged)")

    if bad:
        raise errors.invalid_argument(bad)
    return {
        "enterprise_number": enterprise,
        "product_id": status.product_id,
        "dossier_id": status.dossier_id,
        "phase": status.phase,
        "status": status.status,
        "detail_status": status.detail_status,
        "status_time": status_time,
        "reference_url": ref.url,
        "reference_email": ref.email,
        "reference_contact": ref.contact,
        "required_roles": roles,
        "public": status.public,
        "action_required": status.action_required,
        "action": status.action,
        "visible_until": visible_until,
    }
