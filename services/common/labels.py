"""Dutch labels of phases and status codes, read from the contract's (dosis.v1.label) option.

The protos are the one source: every language's stubs carry the same labels.
"""

from __future__ import annotations

import functools
import unicodedata
from functools import cache

from dosis.v1 import dossier_status_pb2 as pb

_LABEL = pb.label


def _labels(enum) -> dict[int, str]:
    return {
        value.number: value.GetOptions().Extensions[_LABEL]
        for value in enum.DESCRIPTOR.values
        if value.number != 0
    }


@cache
def phase_labels() -> dict[int, str]:
    return _labels(pb.StatusPhase)


@cache
def status_labels() -> dict[int, str]:
    return _labels(pb.StatusCode)


def _fold(text: str) -> str:
    """Case, accents, spaces and underscores do not matter: 'Geïnitieerd' == 'GEINITIEERD'."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return " ".join(text.replace("_", " ").lower().split())


@cache
def _lookup(enum_name: str) -> dict[str, int]:
    enum = getattr(pb, enum_name)
    prefix = enum.DESCRIPTOR.values[0].name.removesuffix("UNSPECIFIED")
    table: dict[str, int] = {}
    labels = phase_labels() if enum_name == "StatusPhase" else status_labels()
    for value in enum.DESCRIPTOR.values:
        if value.number == 0:
            continue
        table[_fold(value.name)] = value.number
        table[_fold(value.name.removeprefix(prefix))] = value.number
        table[_fold(labels[value.number])] = value.number
    return table


@functools.lru_cache(maxsize=1024)  # CSV lists repeat a handful of values millions of times
def parse_phase(text: str) -> int | None:
    """Enum name (with or without prefix) or Dutch label → number; None if unknown."""
    return _lookup("StatusPhase").get(_fold(text))


@functools.lru_cache(maxsize=1024)
def parse_status(text: str) -> int | None:
    return _lookup("StatusCode").get(_fold(text))
