"""Rules that more than one part of DOSIS applies, each written once: the form of a product
id (the catalog's products and the statuses pushed for them), the phases and status codes
a status may carry, and how a CSV list's delimiter is told from its header line.
"""

from __future__ import annotations

import re

from dosis.v1 import dossier_status_pb2 as pb

# A compiled pattern rather than a function: validation matches it once per CSV row.
PRODUCT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}\Z")  # \Z: "$" would let a final newline in
PRODUCT_ID_FORM = "must be 1-128 letters, digits or ._:-"

# The values the contract names, less UNSPECIFIED (which means the field was not set).
PHASES = frozenset(pb.StatusPhase.values()) - {pb.STATUS_PHASE_UNSPECIFIED}
STATUS_CODES = frozenset(pb.StatusCode.values()) - {pb.STATUS_CODE_UNSPECIFIED}


def csv_delimiter(header: str) -> str:
    """";" when the header line has more semicolons than commas (what spreadsheets save in
    locales with a decimal comma), else ","."""
    return ";" if header.count(";") > header.count(",") else ","
