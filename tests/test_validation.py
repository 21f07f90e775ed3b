"""Unit tests of the push validator (no server): each rule, and all violations at once."""

from datetime import datetime, timedelta, timezone

import grpc
import pytest

from dosis.v1 import dossier_status_pb2 as pb
from services.common.errors import DosisError
from services.ingest.validation import validate_status
from tests.helpers import status

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)


def violations(message) -> dict[str, str]:
    with pytest.raises(DosisError) as info:
        validate_status(message, now=NOW)
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    return {v.field: v.reason for v in info.value.violations}


def test_valid_status_gives_canonical_columns():
    values = validate_status(
        status("BE 0316.380.841", when=NOW - timedelta(hours=1), roles=("b", "a", "a")), now=NOW
    )
    assert values["enterprise_number"] == "0316380841"
    assert values["required_roles"] == ["a", "b"]  # sorted, de-duplicated: stable for UNCHANGED
    assert values["status_time"] == NOW - timedelta(hours=1)


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"enterprise_number": "0316380842"}, "status.enterprise_number", "INVALID_ENTERPRISE_NUMBER"),
        ({"product_id": ""}, "status.product_id", "INVALID_PRODUCT_ID"),
        ({"dossier_id": ""}, "status.dossier_id", "INVALID_DOSSIER_ID"),
        ({"dossier_id": "x" * 129}, "status.dossier_id", "INVALID_DOSSIER_ID"),
        ({"dossier_id": "a\nb"}, "status.dossier_id", "INVALID_DOSSIER_ID"),
        ({"phase": pb.STATUS_PHASE_UNSPECIFIED}, "status.phase", "INVALID_PHASE"),
        ({"phase": 99}, "status.phase", "INVALID_PHASE"),
        ({"status": pb.STATUS_CODE_UNSPECIFIED}, "status.status", "INVALID_STATUS"),
        ({"detail_status": "x" * 201}, "status.detail_status", "FIELD_TOO_LONG"),
        ({"status_time": NOW + timedelta(minutes=6)}, "status.status_time", "STATUS_TIME_IN_FUTURE"),
        ({"reference": pb.Reference()}, "status.reference", "MISSING_REFERENCE"),
        ({"reference": pb.Reference(url="http://x.be")}, "status.reference.url", "INVALID_REFERENCE_URL"),
        ({"reference": pb.Reference(url="https://")}, "status.reference.url", "INVALID_REFERENCE_URL"),
        ({"reference": pb.Reference(url="javascript:alert(1)")}, "status.reference.url", "INVALID_REFERENCE_URL"),
        ({"reference": pb.Reference(email="nobody")}, "status.reference.email", "INVALID_REFERENCE_EMAIL"),
        ({"action_required": True}, "status.action", "MISSING_ACTION"),
        ({"action": "x" * 201}, "status.action", "FIELD_TOO_LONG"),
        ({"visible_until": NOW - timedelta(seconds=1)}, "status.visible_until", "VISIBLE_UNTIL_IN_PAST"),
    ],
)
def test_each_rule_names_its_field(changes, field, reason):
    message = status(when=NOW - timedelta(minutes=1), **changes)
    assert violations(message) == {field: reason}


def test_roles_required_unless_public():
    assert violations(status(when=NOW, roles=())) == {"status.required_roles": "MISSING_REQUIRED_ROLES"}
    validate_status(status(when=NOW, roles=(), public=True), now=NOW)


def test_blank_role_is_refused():
    assert violations(status(when=NOW, roles=("ok", " "))) == {"status.required_roles[1]": "INVALID_ROLE"}


def test_missing_status_time():
    message = status(when=NOW)
    message.ClearField("status_time")
    assert violations(message) == {"status.status_time": "MISSING_STATUS_TIME"}


def test_status_time_up_to_five_minutes_ahead_is_fine():
    validate_status(status(when=NOW + timedelta(minutes=4, seconds=59)), now=NOW)


def test_every_bad_field_is_reported_at_once():
    message = status(
        "123",
        product="",
        dossier="",
        phase=pb.STATUS_PHASE_UNSPECIFIED,
        code=pb.STATUS_CODE_UNSPECIFIED,
        when=NOW + timedelta(hours=1),
        roles=(),
        reference=pb.Reference(),
        action_required=True,
    )
    assert set(violations(message)) == {
        "status.enterprise_number",
        "status.product_id",
        "status.dossier_id",
        "status.phase",
        "status.status",
        "status.status_time",
        "status.reference",
        "status.required_roles",
        "status.action",
    }
