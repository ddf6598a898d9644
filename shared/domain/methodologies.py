"""The methodology table and the programmes' cut-off dates shipped with the package (read at the edge)."""

from __future__ import annotations

import datetime
import enum
import functools
from pathlib import Path

import msgspec

__all__ = [
    "CURRENT_METHODOLOGIES",
    "Methodology",
    "MethodologyStatus",
    "MethodologyTable",
    "Program",
    "day_of",
    "methodology_table",
]

CURRENT_METHODOLOGIES = "v1"
_DATA = Path(__file__).resolve().parents[1] / "data"
_NS_PER_DAY = 86_400 * 1_000_000_000


class MethodologyStatus(enum.StrEnum):
    ACTIVE = "active"
    WITHDRAWN = "withdrawn"


class Methodology(msgspec.Struct, frozen=True):
    title: str
    version: str
    status: MethodologyStatus
    standard: str  # the programme that lists it: CCER, VCS ...
    sector: str  # the sectoral scope verifiers are accredited for (forestry, energy ...)
    source: str


class Program(msgspec.Struct, frozen=True):
    """A programme's date rules; "" is no cut-off."""

    reduction_cutoff: str  # only reductions generated after this date are admitted
    start_cutoff: str  # only projects started after this date are admitted
    source: str


class MethodologyTable(msgspec.Struct, frozen=True):
    version: str
    caveat: str
    methodologies: dict[str, Methodology]
    programs: dict[str, Program]

    @property
    def sectors(self) -> frozenset[str]:
        return frozenset(m.sector for m in self.methodologies.values())

    def program(self, standard: str) -> Program:
        return self.programs.get(standard, Program("", "", "no rules listed for this standard"))


@functools.cache
def methodology_table(version: str = CURRENT_METHODOLOGIES) -> MethodologyTable:
    """`shared/data/methodologies_<version>.json`; ValueError if there is none.

    Intake copies what it finds here (version, sector, cut-off) into the ProjectRegistered it logs, so
    replay never depends on today's table, as with the emission factors.
    """
    if not version.isalnum():
        raise ValueError(f"bad methodology table version {version!r}")
    path = _DATA / f"methodologies_{version}.json"
    if not path.is_file():
        raise ValueError(f"no methodology table {version!r}")
    return msgspec.json.decode(path.read_bytes(), type=MethodologyTable)


def day_of(event_ns: int) -> str:
    """The UTC calendar day of a log timestamp, ISO (integer arithmetic: no float rounding)."""
    return (datetime.date(1970, 1, 1) + datetime.timedelta(days=event_ns // _NS_PER_DAY)).isoformat()
