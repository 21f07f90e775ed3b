"""Opaque keyset page tokens (AIP-158).

A token holds the position after the last item returned plus a fingerprint of the query
it belongs to, so a token reused with other parameters is refused instead of silently
giving wrong pages. Tokens are base64url JSON: opaque to clients, readable to operators.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable
from typing import TypeVar

from services.common import errors
from services.common.errors import Violation

T = TypeVar("T")

# Far above any token DOSIS gives (about a hundred characters), far below what costs to read.
MAX_TOKEN_LENGTH = 4096


def fingerprint(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def encode(position: dict, query: str) -> str:
    raw = json.dumps({"p": position, "q": query}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(token: str, query: str, parse: Callable[[dict], T]) -> T | None:
    """The position in a token, turned into a value by `parse`; None for an empty token.

    Anything wrong, including a position that `parse` cannot read (a client edited the
    token), is INVALID_ARGUMENT, never an internal error.
    """
    if not token:
        return None
    if len(token) > MAX_TOKEN_LENGTH:
        raise _invalid("is not a token DOSIS gave")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        position, token_query = data["p"], data["q"]
    # RecursionError: JSON nested deeper than the interpreter's recursion limit ([[[[…).
    except (binascii.Error, ValueError, KeyError, TypeError, RecursionError):
        raise _invalid("is not a token DOSIS gave") from None
    if token_query != query:
        raise _invalid("belongs to a request with other parameters")
    try:
        return parse(position)
    except (ValueError, KeyError, TypeError, OverflowError):
        raise _invalid("is not a token DOSIS gave") from None


def _invalid(description: str) -> errors.DosisError:
    return errors.invalid_argument([Violation("page_token", "INVALID_PAGE_TOKEN", description)])


MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 50


def page_size(requested: int) -> int:
    if requested < 0:
        raise errors.invalid_argument([Violation("page_size", "INVALID_PAGE_SIZE", "must not be negative")])
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
