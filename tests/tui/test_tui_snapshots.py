"""Snapshots (SVG) of the key screens, tiny preset on the demo image, timings hidden.

After a deliberate change of the look: `pytest tests/tui/test_tui_snapshots.py --snapshot-update`,
then look at the SVGs under __snapshots__/ before committing them.
"""

from __future__ import annotations

import pytest
from tui_helpers import run_done, until, view_ready

pytest.importorskip("pytest_textual_snapshot")


def _after(*keys: str):
    async def run_before(pilot) -> None:
        await run_done(pilot)
        for key in keys:
            await pilot.press(key)
        await until(pilot, lambda: view_ready(pilot.app), what="the view")
        if pilot.app.inspector.can_attend():
            await until(pilot, lambda: pilot.app.inspector.cached_summary(pilot.app.inspector.view_spec().layer)
                        is not None, what="the head summary")
        await pilot.pause(0.1)
    return run_before


def test_attention_view(snap_compare, make_app):
    keys = ("n",) * 5 + ("right_square_bracket", "full_stop", "full_stop", "full_stop", "k", "k", "h")
    assert snap_compare(make_app(), terminal_size=(120, 40), run_before=_after(*keys))


def test_patchify_at_the_smallest_size(snap_compare, make_app):
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=_after("n"))


def test_merger_shows_the_groups(snap_compare, make_app):
    # G goes to the last entry (the fusion), p to the merger above it
    assert snap_compare(make_app(), terminal_size=(120, 40), run_before=_after("G", "p"))


def test_help_screen(snap_compare, make_app):
    async def run_before(pilot) -> None:
        await run_done(pilot)
        await pilot.press("question_mark")
        await pilot.pause(0.1)

    assert snap_compare(make_app(), terminal_size=(100, 32), run_before=run_before)
