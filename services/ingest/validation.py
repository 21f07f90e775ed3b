"""Validation of a status: every bad field at once, then canonical values.

The rules work on a plain dict of the store's columns (see services.store.models.Dossier):
a pushed DossierStatus and a CSV row are both read into one and judged by check_values,
so the hot paths build no ORM objects and one set of rules serves both.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

from dosis.v1 import dossier_status_pb2 as pb
from services.common import errors
from services.common.enterprise_number import InvalidEnterpriseNumber, canonical_enterprise_number
from services.common.errors import Violation
from services.common.rules import PHASES, PRODUCT_ID, PRODUCT_ID_FORM, STATUS_CODES
from services.common.timestamps import from_message

UTC = timezone.utc
MAX_FUTURE = timedelta(minutes=5)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_ROLES = 100
MAX_ROLE_LENGTH = 200


# Unicode category Cc: C0 controls, DEL and C1 controls (PostgreSQL refuses NUL, and no label
# needs them). A regex: this runs per field per row.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_NEWLINE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")
_WHITESPACE = re.compile(r"\s")


# The common shape, https://host.name[:port][/path…] without space or control characters: a
# subset of what the full check below accepts, and much quicker (a list has one per row).
_PLAIN_HTTPS_URL = re.compile(r"https://[A-Za-z0-9.\-]+(?::[0-9]{1,5})?(?:[/?#][^\s\x00-\x1f\x7f-\x9f]*)?\Z")


def _is_https_url(url: str) -> bool:
    if len(url) <= 2048 and _PLAIN_HTTPS_URL.match(url):
        return True
    if len(url) > 2048 or not url.startswith("https://") or _WHITESPACE.search(url) or _CONTROL.search(url):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return False
    return bool(parts.hostname)


Fault = tuple[str, str, str]  # (field path, reason code, description)


def validate_status(status: pb.DossierStatus, prefix: str = "status", now: datetime | None = None) -> dict:
    """Column values of a valid status, or INVALID_ARGUMENT naming every bad field."""
    faults: list[Fault] = []
    status_time = visible_until = None
    if status.HasField("status_time") and (status_time := from_message(status.status_time)) is None:
        faults.append(("status_time", "INVALID_TIMESTAMP", "is not a valid timestamp (years 1-9999)"))
    if status.HasField("visible_until") and (visible_until := from_message(status.visible_until)) is None:
        faults.append(("visible_until", "INVALID_TIMESTAMP", "is not a valid timestamp (years 1-9999)"))
    ref = status.reference
    values = {
        "enterprise_number": status.enterprise_number,
        "product_id": status.product_id,
        "dossier_id": status.dossier_id,
        "phase": status.phase,
        "status": status.status,
        "detail_status": status.detail_status,
        "status_time": status_time,
        "reference_url": ref.url,
        "reference_email": ref.email,
        "reference_contact": ref.contact,
        "required_roles": list(status.required_roles),
        "public": status.public,
        "action_required": status.action_required,
        "action": status.action,
        "visible_until": visible_until,
    }
    check_values(values, faults, now or datetime.now(UTC))
    if faults:
        raise errors.invalid_argument(
            [Violation(f"{prefix}.{field}" if prefix else field, reason, text) for field, reason, text in faults]
        )
    return values


def check_values(values: dict, faults: list[Fault], now: datetime) -> None:
    """The rules of every status, on its column values however they arrived (a message or
    a CSV row): appends a fault per bad field, named by its path in DossierStatus, and
    makes the values canonical in place (enterprise number digits, roles sorted and unique).

    A field that already has a fault (the caller could not read it) is not judged again.
    Straight-line code: a CSV list runs this a million times.
    """
    try:
        values["enterprise_number"] = canonical_enterprise_number(values["enterprise_number"])
    except InvalidEnterpriseNumber as exc:
        faults.append(("enterprise_number", "INVALID_ENTERPRISE_NUMBER", str(exc)))

    product_id = values["product_id"]
    if not product_id:
        faults.append(("product_id", "INVALID_PRODUCT_ID", "is required"))
    elif not PRODUCT_ID.match(product_id):
        faults.append(("product_id", "INVALID_PRODUCT_ID", PRODUCT_ID_FORM))

    dossier_id = values["dossier_id"]
    if not 1 <= len(dossier_id) <= 128 or not dossier_id.isprintable():
        faults.append(("dossier_id", "INVALID_DOSSIER_ID", "must be 1-128 printable characters"))

    if values["phase"] not in PHASES:
        faults.append(("phase", "INVALID_PHASE", "must be one of the StatusPhase values, not UNSPECIFIED"))
    if values["status"] not in STATUS_CODES:
        faults.append(("status", "INVALID_STATUS", "must be one of the StatusCode values, not UNSPECIFIED"))

    detail = values["detail_status"]
    if len(detail) > 200:
        faults.append(("detail_status", "FIELD_TOO_LONG", "must be at most 200 characters"))
    if _CONTROL.search(detail):
        faults.append(("detail_status", "CONTROL_CHARACTERS", "must not contain control characters"))

    status_time = values["status_time"]
    if status_time is None:
        if not any(f[0] == "status_time" for f in faults):
            faults.append(("status_time", "MISSING_STATUS_TIME", "is required"))
    elif status_time > now + MAX_FUTURE:
        faults.append(("status_time", "STATUS_TIME_IN_FUTURE", "must not be more than 5 minutes in the future"))

    url, email, contact = values["reference_url"], values["reference_email"], values["reference_contact"]
    if not (url or email or contact):
        faults.append(("reference", "MISSING_REFERENCE", "needs at least one of url, email, contact"))
    if url and not _is_https_url(url):
        faults.append(("reference.url", "INVALID_REFERENCE_URL", "must be an https URL of at most 2048 characters"))
    if email and (len(email) > 254 or not _EMAIL.match(email) or _CONTROL.search(email)):
        faults.append(("reference.email", "INVALID_REFERENCE_EMAIL", "must be an e-mail address"))
    if len(contact) > 500:
        faults.append(("reference.contact", "FIELD_TOO_LONG", "must be at most 500 characters"))
    if _CONTROL_BUT_NEWLINE.search(contact):
        faults.append(("reference.contact", "CONTROL_CHARACTERS", "must not contain control characters but new lines"))

    given = values["required_roles"]
    roles = values["required_roles"] = sorted(set(given))
    if not roles and not values["public"]:
        faults.append(("required_roles", "MISSING_REQUIRED_ROLES", "must name at least one role unless public"))
    if len(roles) > MAX_ROLES:
        faults.append(("required_roles", "TOO_MANY_ROLES", f"at most {MAX_ROLES} roles"))
    for i, role in enumerate(given):
        if not role.strip() or len(role) > MAX_ROLE_LENGTH or not role.isprintable():
            faults.append((f"required_roles[{i}]", "INVALID_ROLE", f"must be 1-{MAX_ROLE_LENGTH} printable characters"))

    action = values["action"]
    if len(action) > 200:
        faults.append(("action", "FIELD_TOO_LONG", "must be at most 200 characters"))
    if _CONTROL.search(action):
        faults.append(("action", "CONTROL_CHARACTERS", "must not contain control characters"))
    if values["action_required"] and not action.strip():
        faults.append(("action", "MISSING_ACTION", "is required when action_required is set"))

    visible_until = values["visible_until"]
    if visible_until is not None and visible_until <= now:
        faults.append(("visible_until", "VISIBLE_UNTIL_IN_PAST", "must be in the future (after it the dossier is purged)"))
