"""The footprint label badge: the same badge as SVG text and as a PNG image."""

from __future__ import annotations

import io
import struct
from typing import Any

from PIL import Image, ImageChops

from services.cli.registry_cli import label_png, label_svg

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def label(total: str = "112.365", claims: int = 0) -> dict[str, Any]:
    """What label_json returns for a product, with `claims` neutrality claims."""
    return {
        "label_id": "LB-42",
        "product": "SKY4",
        "model": "SKY-4",
        "maker": "drones",
        "functional_unit": "one drone over a 3-year life",
        "boundary": "cradle-to-grave",
        "stages": [],
        "total_kg_co2e": total,
        "factor_tables": ["v1"],
        "verifier": "cqc",
        "date": "2025-06-01",
        "carbon_neutral_claims": [{"claim_id": f"NC-{n}"} for n in range(claims)],
    }


def image(png: bytes) -> Image.Image:
    return Image.open(io.BytesIO(png)).convert("RGB")


def test_png_badge_is_a_png_of_twice_the_svg_size() -> None:
    """PNG signature, an IHDR of 720 x 200 x 2 px, and a file Pillow decodes to that size."""
    png = label_png(label())
    assert png[:8] == PNG_SIGNATURE
    assert png[12:16] == b"IHDR"
    assert struct.unpack(">II", png[16:24]) == (720, 400)
    assert image(png).size == (720, 400)
    assert 'width="360" height="200"' in label_svg(label())


def test_png_badge_renders_the_label_numbers_where_the_svg_puts_them() -> None:
    """Two labels that differ only in the total differ only on the total's line (SVG baseline 64,
    28 px type: rows 36-70, doubled), and that line has dark text on it; the band is grey, and green
    once a neutrality claim backs the label, as in the SVG."""
    a, b = image(label_png(label("112.365"))), image(label_png(label("589.620")))
    box = ImageChops.difference(a, b).getbbox()
    assert box is not None
    left, top, _, bottom = box
    assert left >= 2 * 16
    assert top >= 2 * 36
    assert bottom <= 2 * 72
    line = a.crop((32, 72, 700, 144)).convert("L")
    assert line.getextrema()[0] < 80  # type: ignore[operator]  # dark glyphs on the light paper
    assert a.getpixel((360, 20)) == (0x55, 0x55, 0x55)
    assert image(label_png(label(claims=1))).getpixel((360, 20)) == (0x1B, 0x7F, 0x3B)
    svg = label_svg(label("112.365", claims=1))
    assert ">112.365 kg CO2e</text>" in svg
    assert "CARBON NEUTRAL" in svg
