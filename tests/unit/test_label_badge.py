"""The footprint badge: what it says (the footprint, separately the offsets and the claim and certificates
behind them, "carbon neutral" only at full coverage, a mode without it), and that every line fits."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import Any

import matplotlib
import pytest
from matplotlib._afm import AFM
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.ft2font import FT2Font
from PIL import Image

from services.cli.badge import (
    BADGE_WIDTH,
    MARGIN,
    WIDTHS,
    _figure,
    label_document,
    label_png,
    label_svg,
    layout,
    text_width,
)
from services.registry.core import Registry
from tests.unit.registry_world import DRONE, World, world

GOLDEN = Path(__file__).parents[1] / "golden" / "badges"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LONG = "Skyward S4 Pro Max heavy-lift long-range industrial inspection drone with thermal and LiDAR payloads"


def doc(*, units: int = 5000, shipped: int = 5000, claims: int = 1, **changes: Any) -> dict[str, Any]:
    """A label document as label_document makes it: SKY4 at 313.583 kg, one claim of `units` of `shipped`."""
    active = [{
        "claim_id": f"NC-{60 + n}", "label_id": "LB-57", "status": "active", "period_start": "2025-01-01",
        "period_end": "2025-12-31", "units": units, "units_shipped": shipped, "required_tonnes": 1568,
        "covered_tonnes": 1568, "standards": ["CCER"], "certificates": [f"RC-{58 + n}"], "serials": [],
    } for n in range(claims)]  # fmt: skip
    base = {
        "label_id": "LB-57", "product": DRONE, "model": "Skyward S4 inspection drone", "maker": "dronemaker",
        "functional_unit": "one drone over a 3-year service life", "boundary": "cradle-to-grave",
        "stages": [], "cut_offs": [], "total_grams": 313_583, "factor_tables": ["v1"],
        "factor_table_sha256": "b58472f99e9f51ac87722f622c13aad4105c598d2e100198cb8eb77ea978ada4",
        "verifier": "cqc-verify", "date": "2025-06-01", "valid_until": "2026-06-01", "supersedes": "",
        "carbon_neutral": bool(active) and units == shipped, "active_claims": active, "claims": active,
    }  # fmt: skip
    return base | changes


def texts(svg: str) -> list[str]:
    return re.findall(r">([^<]*)</text>", svg)


def test_the_badge_states_the_footprint_and_separately_what_is_offset() -> None:
    """≈ 314 kg per drone, 3-year life, cradle-to-grave; then '5,000 units shipped in 2025: 1,568 t CCER
    retired (RC-58), claim NC-60'; the verifier, the validity date and the ids to look up."""
    lines = texts(label_svg(doc()))
    joined = " ".join(lines)
    assert lines[0] == "CARBON NEUTRAL | greenex"
    assert "≈ 314 kg CO2e" in lines
    assert "per one drone over a 3-year service life, cradle-to-grave" in joined
    assert "5,000 units shipped in 2025: 1,568 t CCER retired (RC-58), claim NC-60" in joined
    assert "Verified by cqc-verify on 2025-06-01, valid until 2026-06-01" in joined
    assert "Look up label LB-57, claim NC-60" in joined


def test_a_claim_for_some_of_the_units_shipped_turns_nothing_green() -> None:
    """On main one claim for ONE unit turned the whole product's badge "CARBON NEUTRAL": now the badge
    says how many of the units shipped the credits cover, and says nothing of neutrality."""
    svg = label_svg(doc(units=1, shipped=5000))
    assert "NEUTRAL" not in svg.upper()
    offset = "1 of 5,000 units shipped in 2025: 1,568 t CCER retired (RC-58), claim NC-60"
    assert offset in " ".join(texts(svg))
    assert layout(doc(units=1, shipped=5000)).band == "#555"


def test_the_no_neutral_wording_mode_never_says_neutral_but_states_the_offsets() -> None:
    """For markets that forbid offset-based neutrality claims (EU Directive 2024/825)."""
    svg = label_svg(doc(), neutral_wording=False)
    assert "neutral" not in svg.lower()
    joined = " ".join(texts(svg))
    assert "Offsetting, claim NC-60: 1,568 t CCER retired (RC-58) for 5,000 units shipped in 2025" in joined
    assert "Retired credits do not reduce this footprint." in joined
    assert texts(svg)[0] == "CARBON FOOTPRINT | greenex"


async def _world_badge() -> tuple[World, Registry, str]:
    w = await world()
    await w.drone()
    label = await w.label()
    assert isinstance(label.label_id, str)
    core = w.ex.core("registry").processor
    assert isinstance(core, Registry)
    return w, core, label.label_id


async def test_one_unit_claimed_in_the_exchange_leaves_the_badge_a_footprint() -> None:
    """The same, end to end: a claim for 1 of 5,000 drones is accepted, the badge stays grey; the
    claim for all 5,000 turns it green and names NC- and RC- ids."""
    w, core, label = await _world_badge()
    one = await w.claim(label, 1, [await w.retire_for(1)], shipped=5000)
    assert one.claim_id
    partial = label_document(core.state, DRONE)
    assert partial["carbon_neutral"] is False
    assert "NEUTRAL" not in label_svg(partial)
    full = await w.claim(label, 5000, [await w.retire_for(1568)])
    whole = label_document(core.state, DRONE)
    assert whole["carbon_neutral"] is True
    svg = label_svg(whole)
    assert f"claim {full.claim_id}" in svg
    assert re.search(r"1,568 t CCER retired \(RC-\d+\)", " ".join(texts(svg)))


async def test_after_a_relabel_upwards_the_old_claim_no_longer_shows() -> None:
    """On main the claim stayed green after the footprint was relabelled from 313.6 to 332.7 kg."""
    w, core, label = await _world_badge()
    await w.claim(label, 5000, [await w.retire_for(1568)])
    await w.act("drones", "record_activity", product=DRONE, stage="materials", factor="steel_crude",
                amount="10")  # fmt: skip
    await w.label()
    after = label_document(core.state, DRONE)
    assert after["carbon_neutral"] is False
    assert after["active_claims"] == []
    assert [c["status"] for c in after["claims"]] == ["superseded"]
    assert "≈ 333 kg CO2e" in texts(label_svg(after))


LONG_UNIT = (
    "one inspection drone including spare batteries, charger and carrying case over a three-year service "
    "life of 600 flight hours"
)
LONG_DOCS = {
    "long names": doc(model=LONG, product="P" * 64, functional_unit=LONG_UNIT,
                      verifier="Pearl-River-Delta-Verification-Centre-Ltd-Shenzhen"),
    "many claims": doc(claims=3, units=1234567, shipped=9876543),
    "unbroken word": doc(model="X" * 90),
    "wide characters": doc(model="无人机 " * 20),
}


@pytest.mark.parametrize("neutral_wording", [True, False])
@pytest.mark.parametrize("name", list(LONG_DOCS))
def test_every_svg_line_fits_the_badge_and_nothing_overlaps(name: str, neutral_wording: bool) -> None:
    """Each line's width (the per-character table: an upper bound for Helvetica, Arial and DejaVu Sans)
    fits between the margins; "cradle-to-grave" and the ids are never cut; lines do not overlap and the
    badge is tall enough for the last one."""
    lay = layout(LONG_DOCS[name], neutral_wording=neutral_wording)
    for line in lay.lines:
        assert line.x + text_width(line.text, line.size, line.weight) <= BADGE_WIDTH - MARGIN, line
    for above, below in zip(lay.lines[1:], lay.lines[2:], strict=False):
        assert below.y - above.y >= below.size, (above, below)
    assert lay.lines[-1].y + 4 <= lay.height
    words = {w for line in lay.lines for w in line.text.split()}
    assert "cradle-to-grave" in words or "cradle-to-grave," in words
    assert any("LB-57" in line.text for line in lay.lines)


@pytest.mark.parametrize("neutral_wording", [True, False])
@pytest.mark.parametrize("name", [n for n in LONG_DOCS if n != "wide characters"])
def test_every_png_line_fits_as_matplotlib_draws_it(name: str, neutral_wording: bool) -> None:
    """The PNG's text measured by matplotlib itself (the extent of each drawn string) stays inside the
    badge: the table's estimate is an upper bound of what is drawn. (DejaVu Sans has no CJK glyphs, so
    the PNG of a CJK name shows boxes: the SVG, drawn by the reader's fonts, is the badge for those.)"""
    lay = layout(LONG_DOCS[name], neutral_wording=neutral_wording)
    fig = _figure(lay, 1)
    renderer = FigureCanvasAgg(fig).get_renderer()  # type: ignore[no-untyped-call]
    for text, line in zip(fig.axes[0].texts, lay.lines, strict=True):
        extent = text.get_window_extent(renderer)
        assert extent.x1 <= BADGE_WIDTH - MARGIN + 0.5, (line.text, extent.x1)
        assert extent.x1 - extent.x0 <= text_width(line.text, line.size, line.weight) + 0.5, line.text


def test_the_width_table_is_the_wider_of_helvetica_and_dejavu_sans() -> None:
    """The table is not guessed: each entry is max(Helvetica AFM advance, DejaVu Sans advance)."""
    data = matplotlib.get_data_path()
    for weight, afm_name, ttf_name in (("normal", "phvr8a.afm", "DejaVuSans.ttf"),
                                       ("bold", "phvb8a.afm", "DejaVuSans-Bold.ttf")):  # fmt: skip
        with open(os.path.join(data, "fonts", "afm", afm_name), "rb") as f:
            afm = AFM(f)
        ttf = FT2Font(os.path.join(data, "fonts", "ttf", ttf_name))
        ttf.set_size(1000, 72)
        advance = [-(-ttf.load_char(c).horiAdvance // 64) for c in range(32, 127)]
        helvetica = [int(afm.get_width_char(c)) for c in range(32, 127)]
        expected = [max(h, dv) for h, dv in zip(helvetica, advance, strict=True)]
        assert list(WIDTHS[weight]) == expected


def test_png_badge_is_the_svg_at_twice_the_size() -> None:
    """PNG signature and an image Pillow decodes at twice the SVG's width and height."""
    svg, png = label_svg(doc()), label_png(doc())
    assert png[:8] == PNG_SIGNATURE
    size = re.search(r'width="(\d+)" height="(\d+)"', svg)
    assert size is not None
    w, h = int(size[1]), int(size[2])
    assert Image.open(io.BytesIO(png)).size == (2 * w, 2 * h)
    green = Image.open(io.BytesIO(png)).convert("RGB").getpixel((w, 20))
    grey = Image.open(io.BytesIO(label_png(doc(units=1)))).convert("RGB").getpixel((w, 20))
    assert (green, grey) == ((0x1B, 0x7F, 0x3B), (0x55, 0x55, 0x55))


@pytest.mark.parametrize(("name", "neutral_wording"), [("neutral", True), ("no_neutral_wording", False)])
def test_golden_badges(name: str, neutral_wording: bool) -> None:
    """The SVG byte for byte as committed (GREENEX_UPDATE_GOLDEN=1 rewrites the files after a change)."""
    svg = label_svg(doc(), neutral_wording=neutral_wording)
    path = GOLDEN / f"sky4_{name}.svg"
    if os.environ.get("GREENEX_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(svg)
    assert svg == path.read_text()
