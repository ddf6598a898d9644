"""`greenex dead-letters list` previews any payload in one line (a dead letter is often a hostile one)."""

from __future__ import annotations

from services.cli.deadletters import _preview


def test_a_dead_letter_of_any_shape_has_a_one_line_preview() -> None:
    assert _preview(b"[" * 1200 + b"]" * 1200).startswith("[[[")  # deep nesting: no RecursionError
    assert _preview(b'{"type":"new_order","client_order_id":"c-1"}') == "new_order c-1"
    assert "\n" not in _preview(b"junk\nbytes\xff")
