"""Operator actions of the registry's integrity rules at the edge: complete projects on listed
methodologies, duplicate screening, reviews, verifier accreditation and reversals (docs/registry.md)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

from services.intake.fields import REGISTRY_ID, iso_date
from shared.attestation import PUBLIC_KEY_HEX, weak_key
from shared.crypto import open_ed25519_public
from shared.domain.base import Refused
from shared.domain.codec import Event
from shared.domain.integrity import (
    EMISSIONS_SCOPE,
    PRODUCT_FOOTPRINT_SCOPE,
    ProjectReviewed,
    ProjectStatus,
    ReversalReported,
    VerifierAccredited,
)
from shared.domain.ledger import BUFFER_ACCOUNT, EXCHANGE_ACCOUNT, OPERATOR
from shared.domain.methodologies import (
    Methodology,
    MethodologyStatus,
    MethodologyTable,
    Program,
    methodology_table,
)
from shared.domain.reasons import Reason
from shared.domain.registry import ProjectRegistered, RetirementKind, RetirementRequested
from shared.protocol import MAX_QUANTITY

__all__ = ["DUPLICATE_RADIUS_E6", "INTEGRITY_ACTIONS", "ProjectSites", "screened"]

_CODE = re.compile(r"[A-Za-z0-9_.\-]{1,32}")
_COUNTRY = re.compile(r"[A-Z]{2}")  # ISO 3166-1 alpha-2
_MAX_TEXT = 200
# Two projects whose coordinates are within 0.01 degree (about 1.1 km) on both axes may be one site.
DUPLICATE_RADIUS_E6 = 10_000
_RESERVED_OWNERS = frozenset(name.lower() for name in (OPERATOR, BUFFER_ACCOUNT, EXCHANGE_ACCOUNT))
_REQUIRED = ("methodology", "country", "project_type", "start_date", "crediting_start", "crediting_end",
             "admin_code", "latitude", "longitude", "origin_registry", "origin_id", "validator")  # fmt: skip


class _Project(msgspec.Struct, forbid_unknown_fields=True):
    project: str
    owner: str
    instrument: str
    standard: str
    # Required, but defaulted so that a missing one is refused as incomplete_project, not malformed.
    methodology: str = ""
    country: str = ""
    project_type: str = ""
    name: str = ""
    buffer_bps: int = 1000
    start_date: str = ""
    crediting_start: str = ""
    crediting_end: str = ""
    admin_code: str = ""
    latitude: str = ""  # decimal degrees, at most 6 places
    longitude: str = ""
    origin_registry: str = ""
    origin_id: str = ""
    validator: str = ""


class _Review(msgspec.Struct, forbid_unknown_fields=True):
    project: str
    decision: str  # approve | reject
    note: str = ""


class _Accreditation(msgspec.Struct, forbid_unknown_fields=True):
    verifier: str
    scopes: tuple[str, ...]
    expires: str
    public_key: str
    accreditor: str = ""


class _Reversal(msgspec.Struct, forbid_unknown_fields=True):
    project: str
    tonnes: int
    description: str
    occurred_on: str = ""


def _date(value: str, what: str) -> str:
    return iso_date(value, what).isoformat()


def _micro_degrees(value: str, what: str, limit: int) -> int:
    try:
        degrees = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"{what} must be decimal degrees") from None
    micro = degrees * 1_000_000
    if not degrees.is_finite() or micro != micro.to_integral_value() or abs(degrees) > limit:
        raise ValueError(f"{what} must be decimal degrees within +-{limit}, at most 6 places")
    return int(micro)


def _text(value: str, what: str) -> str:
    if len(value) > _MAX_TEXT:
        raise ValueError(f"{what} must be at most {_MAX_TEXT} characters")
    return value


def _project(args: dict[str, Any]) -> Event:
    p = msgspec.convert(args, _Project)
    if not REGISTRY_ID.fullmatch(p.project):
        raise ValueError("project must be 1-64 of [A-Za-z0-9_.]")
    if not 0 <= p.buffer_bps <= 10_000:
        raise ValueError("buffer_bps must be in 0..10000")
    if p.owner.lower() in _RESERVED_OWNERS:
        text = f"{p.owner!r} is the exchange's own account: it cannot own projects"
        raise Refused(Reason.RESERVED_OWNER, text)
    missing = [name for name in _REQUIRED if not str(getattr(p, name)).strip()]
    if missing:
        raise Refused(Reason.INCOMPLETE_PROJECT, f"a project needs {', '.join(missing)}")
    if not _COUNTRY.fullmatch(p.country) or not _CODE.fullmatch(p.admin_code):
        raise ValueError("country must be an ISO 3166 alpha-2 code, admin_code 1-32 of [A-Za-z0-9_.-]")
    start = _date(p.start_date, "start_date")
    credit_start = _date(p.crediting_start, "crediting_start")
    credit_end = _date(p.crediting_end, "crediting_end")
    if not start <= credit_start <= credit_end:
        raise ValueError("need start_date <= crediting_start <= crediting_end")
    method, program = _listed(p.methodology, p.standard)
    if program.start_cutoff and start <= program.start_cutoff:
        text = f"{p.standard} admits projects started after {program.start_cutoff}, not on {start}"
        raise Refused(Reason.BEFORE_CUTOFF, text)
    if program.reduction_cutoff and credit_end <= program.reduction_cutoff:
        text = f"{p.standard} admits reductions after {program.reduction_cutoff}; crediting ends by then"
        raise Refused(Reason.BEFORE_CUTOFF, text)
    return ProjectRegistered(
        project=p.project, owner=p.owner, instrument=p.instrument, standard=p.standard,
        methodology=p.methodology, country=p.country, project_type=_text(p.project_type, "project_type"),
        name=_text(p.name, "name"), buffer_bps=p.buffer_bps, start_date=start, crediting_start=credit_start,
        crediting_end=credit_end, admin_code=p.admin_code, lat_e6=_micro_degrees(p.latitude, "latitude", 90),
        lon_e6=_micro_degrees(p.longitude, "longitude", 180),
        origin_registry=_text(p.origin_registry, "origin_registry"),
        origin_id=_text(p.origin_id, "origin_id"),
        methodology_version=method.version, sector=method.sector, validator=_text(p.validator, "validator"),
        reduction_cutoff=program.reduction_cutoff,
    )  # fmt: skip


def _listed(methodology: str, standard: str) -> tuple[Methodology, Program]:
    """The methodology's row and its programme's rules; refused unless listed for the standard and active."""
    table = methodology_table()
    method = table.methodologies.get(methodology)
    if method is None or method.standard != standard:
        text = f"{methodology!r} is not a {standard} methodology of table {table.version}"
        raise Refused(Reason.UNKNOWN_METHODOLOGY, text)
    if method.status is MethodologyStatus.WITHDRAWN:
        raise Refused(Reason.WITHDRAWN_METHODOLOGY, f"{methodology} ({method.title}) is withdrawn")
    return method, table.program(standard)


def _review(args: dict[str, Any]) -> Event:
    r = msgspec.convert(args, _Review)
    if r.decision not in ("approve", "reject"):
        raise ValueError("decision must be approve or reject")
    return ProjectReviewed(project=r.project, approved=r.decision == "approve", note=_text(r.note, "note"))


def _accredit(args: dict[str, Any]) -> Event:
    a = msgspec.convert(args, _Accreditation)
    table = methodology_table()
    unknown = [s for s in a.scopes if not _known_scope(s, table)]
    if not a.scopes or unknown:
        raise ValueError(
            f"scopes must be sectors ({', '.join(sorted(table.sectors))}), methodology ids, "
            f"{PRODUCT_FOOTPRINT_SCOPE}, {EMISSIONS_SCOPE} or {EMISSIONS_SCOPE}:<scheme>"
        )
    if not PUBLIC_KEY_HEX.fullmatch(a.public_key):
        raise ValueError("public_key must be the hex raw Ed25519 public key (64 hex digits)")
    open_ed25519_public(bytes.fromhex(a.public_key))
    if weak_key(bytes.fromhex(a.public_key)):
        raise ValueError("public_key is a point of small order: a signature under it proves nothing")
    return VerifierAccredited(
        verifier=a.verifier, scopes=tuple(sorted(set(a.scopes))), expires=_date(a.expires, "expires"),
        public_key=a.public_key, accreditor=_text(a.accreditor, "accreditor"),
    )  # fmt: skip


def _known_scope(scope: str, table: MethodologyTable) -> bool:
    """A sector or methodology id (project reports), product footprints, or verified emissions under
    every scheme or one (the scheme need not exist yet: accreditations usually come first)."""
    if scope in (PRODUCT_FOOTPRINT_SCOPE, EMISSIONS_SCOPE):
        return True
    scheme = scope.removeprefix(f"{EMISSIONS_SCOPE}:")
    if scheme != scope:
        return REGISTRY_ID.fullmatch(scheme) is not None  # as intake checks scheme ids
    return scope in table.sectors or scope in table.methodologies


def _reversal(args: dict[str, Any]) -> Event:
    r = msgspec.convert(args, _Reversal)
    if not 0 < r.tonnes <= MAX_QUANTITY:
        raise ValueError(f"tonnes must be in 1..{MAX_QUANTITY}")
    if not r.description.strip():
        raise ValueError("a reversal needs a description of the loss event")
    occurred = _date(r.occurred_on, "occurred_on") if r.occurred_on else ""
    # the client order id is the operator command's own, the instrument the project's: see screened()
    return ReversalReported(
        participant=OPERATOR, client_order_id="", project=r.project, instrument="", tonnes=r.tonnes,
        description=_text(r.description, "description"), occurred_on=occurred,
    )  # fmt: skip


INTEGRITY_ACTIONS = {
    "register_project": _project,
    "review_project": _review,
    "accredit_verifier": _accredit,
    "report_reversal": _reversal,
}


@dataclass
class _Site:
    instrument: str
    status: ProjectStatus
    lat_e6: int
    lon_e6: int
    located: bool
    origin: tuple[str, str]


@dataclass
class ProjectSites:
    """Intake's index of registered projects: where they are and where they come from."""

    sites: dict[str, _Site] = field(default_factory=dict)

    def add(self, ev: ProjectRegistered) -> None:
        origin = (ev.origin_registry.casefold(), ev.origin_id.casefold()) if ev.origin_id else ("", "")
        self.sites.setdefault(ev.project, _Site(ev.instrument, ev.status, ev.lat_e6, ev.lon_e6,
                                                bool(ev.admin_code), origin))  # fmt: skip

    def review(self, ev: ProjectReviewed) -> None:
        site = self.sites.get(ev.project)
        if site is not None:
            site.status = ProjectStatus.REGISTERED if ev.approved else ProjectStatus.REJECTED

    def matches(self, ev: ProjectRegistered) -> tuple[str, ...]:
        """The projects (not rejected) at the same site (within the radius) or of the same origin id."""
        origin = (ev.origin_registry.casefold(), ev.origin_id.casefold())
        near = DUPLICATE_RADIUS_E6
        return tuple(
            project
            for project, site in sorted(self.sites.items())
            if site.status is not ProjectStatus.REJECTED
            and (
                (ev.origin_id and site.origin == origin)
                or (site.located and max(abs(site.lat_e6 - ev.lat_e6), abs(site.lon_e6 - ev.lon_e6)) <= near)
            )
        )


def screened(sites: ProjectSites, participants: set[str], event: Event) -> list[Event]:
    """The events an operator's integrity action becomes, checked against intake's index."""
    match event:
        case ProjectRegistered():
            twins = sites.matches(event)
            if twins:
                return [msgspec.structs.replace(event, status=ProjectStatus.UNDER_REVIEW, duplicate_of=twins)]
        case ProjectReviewed():
            site = sites.sites.get(event.project)
            if site is None:
                raise Refused(Reason.UNKNOWN_PROJECT, f"no project {event.project!r}")
            if site.status is not ProjectStatus.UNDER_REVIEW:
                raise Refused(Reason.NOT_UNDER_REVIEW, f"{event.project} is {site.status}, not under review")
        case VerifierAccredited():
            if event.verifier == OPERATOR or event.verifier not in participants:
                raise Refused(Reason.UNKNOWN_PARTICIPANT, f"no participant {event.verifier!r} to accredit")
        case ReversalReported():
            site = sites.sites.get(event.project)
            if site is None:
                raise Refused(Reason.UNKNOWN_PROJECT, f"no project {event.project!r}")
            reported = msgspec.structs.replace(event, instrument=site.instrument)
            # The buffer is pooled per instrument (as Verra's AFOLU pooled buffer): any of its tonnes
            # back any project's reversal; verification refuses the cancellation if the pool is short.
            cancel = RetirementRequested(
                participant=BUFFER_ACCOUNT, client_order_id=event.client_order_id, instrument=site.instrument,
                quantity=event.tonnes, beneficiary="",
                reason=f"reversal of {event.project}: {event.description}"[:_MAX_TEXT],
                kind=RetirementKind.CANCEL,
            )  # fmt: skip
            return [reported, cancel]
        case _:
            pass
    return [event]
