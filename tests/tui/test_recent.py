"""The small LRU cache the TUI keeps pictures in."""

from __future__ import annotations

from qwen3vl_inspect.tui.recent import Recent


def test_recent_keeps_the_last_used_items():
    recent: Recent[str, int] = Recent(2)
    recent.put("a", 1)
    recent.put("b", 2)
    assert recent.get("a") == 1  # a is now the most recent
    recent.put("c", 3)
    assert recent.get("b") is None and recent.get("a") == 1 and recent.get("c") == 3 and len(recent) == 2
