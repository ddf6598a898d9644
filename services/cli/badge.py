"""The footprint label as a document and as a badge (SVG, and PNG drawn by matplotlib): what the product
emits, separately what was offset and under which claim and certificates, with wrapped text that fits."""

from __future__ import annotations

import datetime
import io
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

from services.registry.claims import active_claims
from services.registry.state import RegistryState
from shared.domain.registry import NeutralityClaimed

__all__ = [
    "BADGE_WIDTH",
    "Layout",
    "TextLine",
    "label_document",
    "label_png",
    "label_svg",
    "layout",
    "text_width",
]

BADGE_WIDTH, MARGIN, BAND_H, RADIUS = 400, 16, 34, 12
_GREEN, _GREY, _PAPER = "#1b7f3b", "#555", "#f4f8f1"

# Advance widths of ASCII 32..126 in 1/1000 em: for each character the larger of Helvetica's (the Adobe
# core-font AFM files matplotlib ships, phvr8a/phvb8a) and DejaVu Sans' (the font matplotlib draws the PNG
# with; wider than Helvetica and Arial), so a line measured here fits whichever of them renders it.
# Any other character counts a full em (CJK is one em; symbols such as "≈" are narrower). Kerning only
# narrows a line; hinting at small sizes widens what Agg draws by up to 2.4 % (measured on the badge's
# lines), hence HINTING. tests/unit/test_label_badge.py checks the table against the font files and each
# drawn PNG line against matplotlib's own text extent.
_NORMAL = (
    318, 401, 460, 838, 636, 950, 780, 275, 390, 390, 500, 838, 318, 361, 318, 337, 636, 636, 636, 636, 636,
    636, 636, 636, 636, 636, 337, 337, 838, 838, 838, 556, 1015, 684, 686, 722, 770, 667, 611, 778, 752, 295,
    500, 667, 557, 863, 748, 787, 667, 787, 722, 667, 611, 732, 684, 989, 685, 667, 685, 390, 337, 390, 838,
    556, 500, 613, 635, 550, 635, 615, 352, 635, 634, 278, 279, 579, 278, 974, 634, 611, 635, 635, 412, 521,
    392, 634, 592, 818, 592, 592, 525, 637, 337, 636, 838,
)
_BOLD = (
    348, 456, 521, 838, 696, 1002, 872, 306, 457, 457, 523, 838, 380, 415, 380, 365, 696, 696, 696, 696, 696,
    696, 696, 696, 696, 696, 400, 400, 838, 838, 838, 611, 1000, 774, 762, 734, 830, 683, 683, 821, 837, 372,
    556, 775, 637, 995, 837, 850, 733, 850, 770, 720, 682, 812, 774, 1103, 771, 724, 725, 457, 365, 457, 838,
    556, 500, 675, 716, 593, 716, 678, 435, 716, 712, 343, 343, 665, 343, 1042, 712, 687, 716, 716, 493, 595,
    478, 712, 652, 924, 645, 652, 582, 712, 365, 712, 838,
)
WIDTHS = {"normal": _NORMAL, "bold": _BOLD}
HINTING = 1.03


def text_width(text: str, size: int, weight: str = "normal") -> float:
    """The width in badge pixels of `text` at `size` px: an upper bound for Helvetica, Arial or DejaVu."""
    table = WIDTHS[weight]
    em = sum(table[ord(c) - 32] if 32 <= ord(c) <= 126 else 1000 for c in text)
    return em * size * HINTING / 1000


def _wrap(text: str, size: int, weight: str, width: float) -> list[str]:
    """Greedy word wrap to `width`; a word longer than a line is cut where it must be."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        candidate = f"{line} {word}" if line else word
        if text_width(candidate, size, weight) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
        rest = word
        while text_width(rest, size, weight) > width:
            cut = max([1] + [n for n in range(1, len(rest)) if text_width(rest[:n], size, weight) <= width])
            lines.append(rest[:cut])
            rest = rest[cut:]
        line = rest
    return [*lines, line] if line else lines


@dataclass(frozen=True)
class TextLine:
    x: int
    y: int  # baseline
    size: int  # px
    weight: str
    text: str
    colour: str = "#000"


@dataclass(frozen=True)
class Layout:
    width: int
    height: int
    band: str  # colour of the title band
    lines: list[TextLine]  # the first is the title, on the band


def layout(doc: dict[str, Any], *, neutral_wording: bool = True) -> Layout:
    """Every line of the badge, wrapped to its width; the height follows the text."""
    neutral = neutral_wording and bool(doc["carbon_neutral"])
    title = "CARBON NEUTRAL" if neutral else "CARBON FOOTPRINT"
    blocks: list[tuple[int, str, str, int]] = [  # size, weight, text, space before
        (28, "bold", f"≈ {_approx_kg(doc['total_grams'])} kg CO2e", 12),
        (13, "normal", f"per {doc['functional_unit']}, {doc['boundary']}", 4),
        (13, "normal", f"{doc['model']} ({doc['product']})", 2),
    ]
    offset_weight = "bold" if neutral else "normal"
    blocks += [(13, offset_weight, _offset_line(c, neutral_wording), 8) for c in doc["active_claims"]]
    if doc["active_claims"] and not neutral_wording:
        blocks.append((11, "normal", "Retired credits do not reduce this footprint.", 2))
    verified = f"Verified by {doc['verifier']} on {doc['date']}, valid until {doc['valid_until']}"
    factors = f"Factors {', '.join(doc['factor_tables'])} (sha256 {doc['factor_table_sha256'][:12]})"
    ids = [f"label {doc['label_id']}", *(f"claim {c['claim_id']}" for c in doc["active_claims"])]
    look_up = ", ".join(ids)
    blocks += [(12, "normal", verified, 8), (12, "normal", factors, 2), (12, "bold", f"Look up {look_up}", 2)]
    lines = [TextLine(MARGIN, 23, 15, "bold", f"{title} | greenex", "#fff")]
    y = BAND_H
    for size, weight, text, space in blocks:
        y += space
        for part in _wrap(text, size, weight, BADGE_WIDTH - 2 * MARGIN):
            y += round(size * 1.25)
            lines.append(TextLine(MARGIN, y, size, weight, part))
    return Layout(BADGE_WIDTH, y + 16, _GREEN if neutral else _GREY, lines)


def _approx_kg(grams: int) -> str:
    """Whole kg, half up, with thousands separators (tenths below 10 kg): the badge rounds, the label
    document keeps the grams."""
    if grams < 10_000:
        tenths = (grams + 50) // 100
        return f"{tenths // 10}.{tenths % 10}"
    return f"{(grams + 500) // 1000:,}"


def _offset_line(claim: dict[str, Any], neutral_wording: bool) -> str:
    """'5,000 units shipped in 2025: 1,568 t CCER retired (RC-58), claim NC-60', or the share covered."""
    shipped, units = claim["units_shipped"], claim["units"]
    scope = f"{units:,} units" if units == shipped else f"{units:,} of {shipped:,} units"
    standards = "/".join(claim["standards"]) or "credits"
    retired = f"{claim['covered_tonnes']:,} t {standards} retired ({', '.join(claim['certificates'])})"
    if neutral_wording:
        return f"{scope} shipped {_period(claim)}: {retired}, claim {claim['claim_id']}"
    return f"Offsetting, claim {claim['claim_id']}: {retired} for {scope} shipped {_period(claim)}"


def _period(claim: dict[str, Any]) -> str:
    start, end = claim["period_start"], claim["period_end"]
    if start.endswith("-01-01") and end == f"{start[:4]}-12-31":
        return f"in {start[:4]}"
    return f"from {start} to {end}" if start else "(no period declared)"


def label_document(s: RegistryState, product: str) -> dict[str, Any]:
    """The product's current label with every claim made on it and whether it stands."""
    label = s.labels[product]
    current = [c for c in active_claims(s, product) if c.label_id == label.label_id]
    return {
        "label_id": label.label_id, "product": label.product, "model": label.model, "maker": label.owner,
        "functional_unit": label.functional_unit, "boundary": label.boundary,
        "stages": [{"stage": st.stage, "grams": st.grams, "included": st.included} for st in label.stages],
        "cut_offs": [{"stage": c.stage, "justification": c.justification} for c in label.cut_offs],
        "total_grams": label.total_grams, "factor_tables": list(label.factor_tables),
        "factor_table_sha256": label.factor_table_sha256, "verifier": label.verifier,
        "date": _date(label.issued_ns), "valid_until": label.valid_until, "supersedes": label.supersedes,
        # Neutral only when a standing claim on this label covers every unit shipped in its period
        # (ISO 14068-1, PAS 2060): a claim for some of the units says so and turns nothing green.
        "carbon_neutral": any(c.units_shipped and c.units == c.units_shipped for c in current),
        "active_claims": [_claim(c, "active") for c in current],
        "claims": [_claim(c, "superseded" if c.claim_id in s.superseded else "active")
                   for c in s.claims.values() if c.product == product],
    }  # fmt: skip


def _claim(c: NeutralityClaimed, status: str) -> dict[str, Any]:
    return {
        "claim_id": c.claim_id, "label_id": c.label_id, "status": status, "period_start": c.period_start,
        "period_end": c.period_end, "units": c.units, "units_shipped": c.units_shipped,
        "required_tonnes": c.required_tonnes, "covered_tonnes": c.covered_tonnes,
        "standards": list(c.standards), "certificates": list(c.certificates), "serials": list(c.serials),
    }  # fmt: skip


def _date(ns: int) -> str:
    return datetime.datetime.fromtimestamp(ns // 1_000_000_000, datetime.UTC).date().isoformat()


def label_svg(doc: dict[str, Any], *, neutral_wording: bool = True) -> str:
    """The badge as SVG: BADGE_WIDTH wide, as tall as its wrapped text."""
    lay = layout(doc, neutral_wording=neutral_wording)
    texts = "\n".join(
        f'  <text x="{t.x}" y="{t.y}" font-size="{t.size}" font-weight="{t.weight}" fill="{t.colour}">'
        f"{escape(t.text)}</text>"
        for t in lay.lines
    )
    w, h = lay.width, lay.height
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
        'font-family="Helvetica, Arial, sans-serif">\n'
        f'  <rect x="1" y="1" width="{w - 2}" height="{h - 2}" rx="{RADIUS}" fill="{_PAPER}" '
        f'stroke="{_GREEN}" stroke-width="2"/>\n'
        f'  <rect width="{w}" height="{BAND_H}" rx="{RADIUS}" fill="{lay.band}"/>\n'
        f"{texts}\n</svg>\n"
    )


def label_png(doc: dict[str, Any], scale: int = 2, *, neutral_wording: bool = True) -> bytes:
    """The SVG badge drawn with matplotlib's Agg backend, (width x scale) x (height x scale) pixels.

    matplotlib is imported here, not at module level, so the other commands start without it; Agg is
    chosen explicitly so no display is needed. At 100 badge pixels per inch one pixel is 0.72 pt.
    """
    fig = _figure(layout(doc, neutral_wording=neutral_wording), scale)
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=100 * scale, facecolor="none")
    return out.getvalue()


def _figure(lay: Layout, scale: int) -> Any:
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    from matplotlib.figure import Figure  # noqa: PLC0415
    from matplotlib.patches import FancyBboxPatch  # noqa: PLC0415

    fig = Figure(figsize=(lay.width / 100, lay.height / 100), dpi=100 * scale)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, lay.width)
    ax.set_ylim(lay.height, 0)  # y down, as in the SVG
    ax.set_axis_off()
    box = f"round,pad=0,rounding_size={RADIUS}"
    ax.add_patch(FancyBboxPatch((1, 1), lay.width - 2, lay.height - 2, boxstyle=box, fc=_PAPER, ec=_GREEN,
                                lw=1.44))  # fmt: skip
    ax.add_patch(FancyBboxPatch((0, 0), lay.width, BAND_H, boxstyle=box, fc=lay.band, ec="none"))
    for t in lay.lines:
        ax.text(t.x, t.y, t.text, fontsize=t.size * 0.72, fontweight=t.weight, color=t.colour,
                family="DejaVu Sans", va="baseline", ha="left")  # fmt: skip
    return fig
