"""The real command in a real terminal: tmux runs `qwen3vl-inspect`, we type and read the screen.

This is what a person sees: layout at 120×40, keys, a saved PNG, the help, the too-small message,
quitting with exit code 0, and a bad image refused before the UI with one line and exit code 2.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None,
                                reason="tmux is not installed (apt-get install tmux; .ci/run installs it)")


def _command() -> str:
    script = Path(sys.executable).with_name("qwen3vl-inspect")
    return str(script) if script.exists() else f"{sys.executable} -m qwen3vl_inspect"


class Terminal:
    def __init__(self, command: str, cwd: Path, width: int = 120, height: int = 40) -> None:
        self.name = f"qwen3vl-test-{uuid.uuid4().hex[:8]}"
        subprocess.run(["tmux", "new-session", "-d", "-s", self.name, "-x", str(width), "-y", str(height), "-c", str(cwd),
                        f"unset COLUMNS LINES; {command}; echo EXIT=$?; sleep 120"], check=True)
        # (a test runner may export COLUMNS/LINES; the app must size itself from the terminal, as for a person)

    def screen(self, colours: bool = False) -> str:
        args = ["tmux", "capture-pane", "-p", "-t", self.name] + (["-e"] if colours else [])
        return subprocess.run(args, capture_output=True, text=True).stdout

    def keys(self, *keys: str) -> None:
        for key in keys:
            subprocess.run(["tmux", "send-keys", "-t", self.name, key], check=True)
            time.sleep(0.05)

    def wait_for(self, text: str, timeout: float = 90.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never appeared; the screen:\n{self.screen()}")

    def wait_gone(self, text: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if text not in screen:
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never went away; the screen:\n{self.screen()}")

    def resize(self, width: int, height: int) -> None:
        subprocess.run(["tmux", "resize-window", "-t", self.name, "-x", str(width), "-y", str(height)], check=True)

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


@pytest.fixture
def terminal(tmp_path):
    opened: list[Terminal] = []

    def open_(args: str, **kwargs) -> Terminal:
        opened.append(Terminal(f"{_command()} {args}", tmp_path, **kwargs))
        return opened[-1]

    yield open_
    for term in opened:
        term.close()


def test_the_real_command_in_tmux(terminal, tmp_path):
    term = terminal("--model tiny")
    screen = term.wait_for("DONE")
    for text in ("demo.png", "tiny", "random weights", "18×24=432 patches", "input & resize", "block 3",
                 "patch merger", "vision-to-text fusion", "q quit", "13/13"):  # 12 encoder stages + the fusion
        assert text in screen, text
    assert screen.count("▀") > 200  # the picture, in half blocks
    assert "\x1b[38;5;" in term.screen(colours=True) or "\x1b[38;2;" in term.screen(colours=True)

    term.keys(*"nnnnn")  # to block 0: its attention over the image
    screen = term.wait_for("block 0 · heads")
    assert "mean of 4 heads · where query (9,12)" in screen
    term.keys(".", "l")
    screen = term.wait_for("head 0 of 4 · where query (9,13)")

    term.keys("s")
    screen = term.wait_for("saved PNG")
    assert (tmp_path / "demo-blocks.0-h0-q9_13.png").is_file()

    term.keys("?")
    term.wait_for("qwen3vl-inspect · keys")
    term.keys("Escape")
    term.wait_gone("qwen3vl-inspect · keys")

    term.keys("G")  # the last entry: the merger's tokens in the language model's input
    for text in ("<|image_pad|>×108 <|vision_end|>", "random stand-in", "4…111 <|image_pad|>×108  4 4…12 4…15",
                 "▣ seq 58 (t,h,w)=(4,8,10)", "position id (t, h, w) = (4, 8, 10)"):
        term.wait_for(text)  # (one by one: a capture can fall between two halves of a redraw)
    term.keys("l")  # the next merged token
    term.wait_for("position id (t, h, w) = (4, 8, 11)")
    term.keys("g", *"nnnnn")

    term.resize(70, 20)
    screen = term.wait_for("Terminal too small")
    assert "70×20" in screen and "80×24" in screen
    term.resize(80, 24)
    term.wait_gone("Terminal too small")
    screen = term.wait_for("block 0 · heads")
    assert "demo.png" in screen.splitlines()[0]

    term.keys("q")
    term.wait_for("EXIT=0", timeout=20)


def test_a_bad_image_is_refused_before_the_ui(terminal, tmp_path):
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    term = terminal(f"{tmp_path / 'broken.jpg'} --model tiny")
    screen = term.wait_for("EXIT=", timeout=60)
    assert "EXIT=2" in screen
    lines = [line for line in screen.splitlines() if line.strip()]
    assert lines[0].startswith("error:") and "broken.jpg" in lines[0] and "Traceback" not in screen


def test_break_variable_pauses_the_tui_and_q_still_quits(tmp_path):
    """With QWEN3VL_INSPECT_BREAK set, the app once hung in breakpoint() in its worker; now it pauses."""
    term = Terminal(f"QWEN3VL_INSPECT_BREAK=blocks.1.attn,nope {_command()} --model tiny", tmp_path)
    try:
        screen = term.wait_for("paused at breakpoint blocks.1")
        assert "PAUSED" in screen and "8/13" in screen  # input … blocks.1 (tiny taps block 0 too)
        term.keys("q")
        term.wait_for("EXIT=0", timeout=20)
    finally:
        term.close()
