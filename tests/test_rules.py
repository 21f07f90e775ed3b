"""The shared rules (services.common.rules), and that each place applying one judges alike."""

from __future__ import annotations

from datetime import datetime, timezone

import grpc
import pytest

from dosis.v1 import catalog_pb2, query_pb2
from dosis.v1 import dossier_status_pb2 as pb
from services.catalog.servicer import validate_product
from services.common import rules
from services.common.errors import DosisError
from services.ingest.validation import validate_status
from services.query.servicer import _filters
from tests.helpers import status

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)

GOOD_IDS = ["1502", "a", "A" * 128, "00000000-0000-0000-0000-000000000006", "ipdc:1502.v2_x"]
BAD_IDS = ["-1502", ".x", "A" * 129, "15 02", "1502/x", "é", "_x", "1502\n", "\n1502"]


def _reasons(call) -> dict[str, str]:
    """field → reason of the INVALID_ARGUMENT that call raises, or {} when it raises none."""
    try:
        call()
    except DosisError as exc:
        assert exc.code == grpc.StatusCode.INVALID_ARGUMENT
        return {v.field: v.reason for v in exc.violations}
    return {}


@pytest.mark.parametrize("product_id", GOOD_IDS + BAD_IDS)
def test_a_product_id_is_judged_alike_by_the_catalog_and_by_ingest(product_id):
    good = product_id in GOOD_IDS
    assert bool(rules.PRODUCT_ID.match(product_id)) is good
    product = catalog_pb2.Product(id=product_id, name="a product")
    pushed = status(product=product_id, when=NOW)
    assert ("product.id" in _reasons(lambda: validate_product(product))) is not good
    assert ("status.product_id" in _reasons(lambda: validate_status(pushed, now=NOW))) is not good


def test_the_known_phases_and_codes_are_the_contract_s_less_unspecified():
    assert rules.PHASES == set(pb.StatusPhase.values()) - {0} and len(rules.PHASES) == 7
    assert rules.STATUS_CODES == set(pb.StatusCode.values()) - {0} and len(rules.STATUS_CODES) == 23


# status field → (its filter field, its known values); UNSPECIFIED (0) and one past the last
# are tried as well as every known value.
_ENUMS = {"phase": ("phases", rules.PHASES), "status": ("statuses", rules.STATUS_CODES)}
_TRIED = [(field, v) for field, (_, known) in _ENUMS.items() for v in [0, max(known) + 1, *sorted(known)]]


@pytest.mark.parametrize(("field", "value"), _TRIED)
def test_a_phase_or_status_code_is_judged_alike_when_pushed_and_when_filtered_on(field, value):
    filter_field, known_values = _ENUMS[field]
    known = value in known_values
    pushed = status(when=NOW)
    setattr(pushed, field, value)
    filtered = query_pb2.ListDossiersRequest(filter={filter_field: [value]})
    assert (f"status.{field}" in _reasons(lambda: validate_status(pushed, now=NOW))) is not known
    assert (f"filter.{filter_field}" in _reasons(lambda: _filters(filtered))) is not known


@pytest.mark.parametrize(
    ("header", "delimiter"),
    [
        ("enterprise_number,product_id,dossier_id", ","),
        ("enterprise_number;product_id;dossier_id", ";"),
        ("\ufeffenterprise_number;product_id;dossier_id\r\n", ";"),
        ("a;b,c,d", ","),  # more commas than semicolons
        ("a;b;c,d", ";"),
        ("a;b,c", ","),  # a tie is a comma
        ("", ","),
    ],
)
def test_the_csv_delimiter_is_the_more_frequent_of_semicolon_and_comma(header, delimiter):
    assert rules.csv_delimiter(header) == delimiter
