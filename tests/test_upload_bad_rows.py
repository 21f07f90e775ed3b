"""UploadBatch with bad rows: each fault reported by line and column, the good rows stored, the
reported list capped but every rejected row counted."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.ingest.csv_batch import MAX_REPORTED
from tests.helpers import ENTERPRISE_C
from tests.upload_helpers import NOW, counts, csv_bytes, expect, faults, row, stored, upload

MULTI_LINE_CONTACT = "Loket Hinderpremie\nKoning Albert II-laan 35, Brussel; bus 12"


def bad_file_records() -> tuple[list[list[str]], dict[int, str]]:
    """Records of a file mixing good and bad rows, and the (line → column) of each fault."""
    records = [
        row("OK-1"),  # line 2
        row("B-3", "0316380842"),  # 3: bad check digits
        row("B-4", phase="KOKEN"),  # 4
        row("B-5", status="VERSCHROEID"),  # 5
        row("B-6", when=""),  # 6: missing status_time
        row("B-7", when="2026-01-01T10:00:00"),  # 7: no time zone
        row("B-8", when=NOW + timedelta(hours=1)),  # 8: in the future
        row("B-9", url="http://www.vlaio.be/dossier"),  # 9
        row("B-10", url="", email="", contact=""),  # 10: no reference at all
        row("B-11", roles="", public="false"),  # 11
        row("B-12", public="misschien"),  # 12
        row("B-13", action_required="true", action=""),  # 13
        row("B-14")[:-1],  # 14: one field too few
        row("B-15") + ["extra"],  # 15: one field too many
        row("B-16", product="2031"),  # 16: OMGEVING's product
        row("B-17", product="1001"),  # 17: inactive
        row("B-18", product="9999"),  # 18: unknown
        row("OK-2", product="1519", contact=MULTI_LINE_CONTACT),  # 19-20: one record on two lines
        row("B-21", "BE0534669939"),  # 21: right after the multi-line record
        [],  # 22: a blank line is skipped
        row("OK-3", ENTERPRISE_C),  # 23
        row("B-24", action_required="jein"),  # 24
        row("B-25", when="0001-01-01T00:00:00+01:00"),  # 25: before year 1 in UTC
        row("B-26", visible_until="9999-12-31T23:00:00-05:00"),  # 26: after year 9999 in UTC
    ]
    expected = {
        3: "enterprise_number", 4: "phase", 5: "status", 6: "status_time", 7: "status_time", 8: "status_time",
        9: "reference_url", 10: "reference", 11: "required_roles", 12: "public", 13: "action", 14: "", 15: "",
        16: "product_id", 17: "product_id", 18: "product_id", 21: "enterprise_number", 24: "action_required",
        25: "status_time", 26: "visible_until",
    }
    return records, expected


@pytest.mark.parametrize("delimiter", [",", ";"])
def test_bad_rows_are_reported_by_line_and_column_good_rows_stored(stack, delimiter):
    records, expected = bad_file_records()
    report = upload(stack, csv_bytes(records, delimiter=delimiter))

    assert counts(report) == expect(rows_read=23, created=3, rejected=len(expected))
    got = {}
    for r in report.rejected_rows:
        assert r.line not in got, f"line {r.line} reported twice: {report.rejected_rows}"
        got[r.line] = (r.column, r.reason)
    assert set(got) == set(expected)
    for line, column in expected.items():
        if column == "reference":  # no single column: any of the three reference columns names it
            assert got[line][0] in {"reference_url", "reference_email", "reference_contact"}, got[line]
        else:
            assert got[line][0] == column, (line, got[line])
        assert got[line][1], f"line {line} has no reason"

    reasons = {line: reason.lower() for line, (_, reason) in got.items()}
    assert "time zone" in reasons[7]
    assert "future" in reasons[8]
    assert "https" in reasons[9]
    assert "14" in reasons[14] and "15" in reasons[14]
    assert "16" in reasons[15] and "15" in reasons[15]
    assert "does not serve" in reasons[16] or "not allowed" in reasons[16]
    assert "active" in reasons[17]
    assert "catalog" in reasons[18] or "unknown" in reasons[18]
    assert "range" in reasons[25] and "range" in reasons[26]

    rows = stored(stack)
    assert set(rows) == {("VLAIO", "1502", "OK-1"), ("VLAIO", "1519", "OK-2"), ("VLAIO", "1502", "OK-3")}
    assert rows[("VLAIO", "1519", "OK-2")]["reference_contact"] == MULTI_LINE_CONTACT
    assert rows[("VLAIO", "1502", "OK-3")]["enterprise_number"] == ENTERPRISE_C


def test_a_row_with_several_validation_faults_lists_each_and_counts_once(stack):
    records = [
        row("OK-1"),
        row("M-1", "0316380842", url="http://insecure.example", roles="", public="false"),  # line 3
        row("OK-2"),
    ]
    report = upload(stack, csv_bytes(records))
    assert counts(report) == expect(rows_read=3, created=2, rejected=1)
    assert faults(report) == [(3, "enterprise_number"), (3, "reference_url"), (3, "required_roles")]


def test_a_row_with_a_parse_fault_and_other_faults_lists_each(stack):
    """A bad phase, a bad boolean and a bad enterprise number in one row: three faults.
    (The loader stops at the first parsing fault and hides the others.)"""
    records = [row("M-2", "0316380842", phase="KOKEN", public="misschien")]  # line 2
    report = upload(stack, csv_bytes(records))
    assert counts(report) == expect(rows_read=1, rejected=1)
    assert faults(report) == [(2, "enterprise_number"), (2, "phase"), (2, "public")]


def test_rejected_rows_listed_up_to_the_limit_but_all_counted(stack):
    bad = MAX_REPORTED + 50
    records = [row(f"X-{i}", "0316380842") for i in range(bad)] + [row("OK-LAST")]
    report = upload(stack, csv_bytes(records))
    assert counts(report) == expect(rows_read=bad + 1, created=1, rejected=bad)
    assert len(report.rejected_rows) == MAX_REPORTED
    assert [r.line for r in report.rejected_rows] == list(range(2, MAX_REPORTED + 2))
    assert set(stored(stack)) == {("VLAIO", "1502", "OK-LAST")}
