"""The projects table of `greenex registry`: each project's status, provenance and reversals."""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from services.registry.core import Registry
from shared.domain.registry import ProjectRegistered

__all__ = ["ProjectRow", "print_projects", "project_rows"]


@dataclass(frozen=True)
class ProjectRow:
    project: str
    status: str  # registered | under_review (matches ...) | rejected, and "reversed" once a loss is reported
    methodology: str
    crediting: str
    location: str
    origin: str
    reversed_tonnes: int  # reported lost
    cancelled_tonnes: int  # BUFFER tonnes cancelled for it
    reversals: tuple[str, ...]  # "<tonnes> t <occurred_on>: <description> -> <certificate or refusal>"


def _degrees(micro: int) -> str:
    sign = "-" if micro < 0 else ""
    whole, part = divmod(abs(micro), 1_000_000)
    return f"{sign}{whole}.{part:06d}"


def _location(p: ProjectRegistered) -> str:
    return f"{p.country} {p.admin_code} {_degrees(p.lat_e6)},{_degrees(p.lon_e6)}"


def project_rows(registry: Registry) -> list[ProjectRow]:
    s = registry.state
    rows: list[ProjectRow] = []
    for pid, p in sorted(s.projects.items()):
        reversals = [r for r in s.reversals.values() if r.reported.project == pid]
        reversals.sort(key=lambda r: r.seq)
        status = str(p.status) + (f" (matches {', '.join(p.duplicate_of)})" if p.duplicate_of else "")
        if reversals:
            status += ", reversed"
        rows.append(ProjectRow(
            project=pid, status=status,
            methodology=f"{p.methodology} {p.methodology_version}".strip(),
            crediting=f"{p.crediting_start}..{p.crediting_end}" if p.crediting_start else "",
            location=_location(p) if p.admin_code else "",
            origin=f"{p.origin_registry} {p.origin_id}".strip(),
            reversed_tonnes=sum(r.reported.tonnes for r in reversals),
            cancelled_tonnes=sum(r.cancelled for r in reversals),
            reversals=tuple(
                f"{r.reported.tonnes} t {r.reported.occurred_on}: {r.reported.description} -> "
                + (r.certificate or (f"refused: {r.refused}" if r.refused else "pending"))
                for r in reversals
            ),
        ))  # fmt: skip
    return rows


def print_projects(out: Console, registry: Registry) -> None:
    table = Table(title="Projects: status, provenance and reversals (buffer tonnes cancelled for them)")
    cols = ("project", "status", "methodology", "crediting", "location", "origin", "reversed", "cancelled")
    for col in cols:
        table.add_column(col, justify="right" if col in ("reversed", "cancelled") else "left")
    for r in project_rows(registry):
        table.add_row(r.project, r.status, r.methodology, r.crediting, r.location, r.origin,
                      str(r.reversed_tonnes), str(r.cancelled_tonnes))  # fmt: skip
        for line in r.reversals:
            table.add_row("", f"  reversal {line}", "", "", "", "", "", "")
    out.print(table)
