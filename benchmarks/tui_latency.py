"""How quickly the TUI answers: command → first interactive frame, and key → redrawn frame.

    python benchmarks/tui_latency.py [--model qwen3-vl-2b] [--repeats 3] [--skip-tmux]

1. First frame: the real command runs in tmux (120×40); the clock starts when tmux starts it and
   stops (30 ms polling) when the screen shows the header and the footer's keys (the app then answers keys, while
   the model is still being built in a worker). Also shown: when the model is ready and when the
   whole run is done. Needs tmux (apt-get install tmux).
2. Key → redraw: the App runs in-process (headless, 120×40) on the demo image (432 patches), all
   stages computed; the clock starts when the key event reaches the app and stops when a frame
   showing the view that key asks for has been composed. "first" is the first visit of a view
   (its map is computed, e.g. a block's 16 heads), "again" a view already seen; writing the frame
   to a real terminal is not included (tmux figures below include it, at capture-pane resolution).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMAND = ROOT / ".venv" / "bin" / "qwen3vl-inspect"


# ---- 1. command → first frame (tmux) -------------------------------------------------------------

def _capture(session: str) -> str:
    return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout


def first_frame(model: str, timeout: float = 600.0) -> dict[str, float]:
    session = f"bench{time.monotonic_ns() % 10**8}"
    start = time.perf_counter()
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "40",
                    f"{COMMAND} --model {model}; sleep 60"], check=True)
    marks: dict[str, float] = {}
    try:
        while time.perf_counter() - start < timeout:
            screen = _capture(session)
            now = time.perf_counter() - start
            if "first frame" not in marks and "demo.png" in screen and "quit" in screen:
                marks["first frame"] = now
            if "model ready" not in marks and "first frame" in marks and "LOADING" not in screen:
                marks["model ready"] = now
            if "DONE" in screen:
                marks["run done"] = now
                break
            time.sleep(0.03)  # polling more often would take CPU from the app on a small machine
    finally:
        subprocess.run(["tmux", "send-keys", "-t", session, "q"])
        time.sleep(0.5)
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    return marks


def key_latency_tmux(model: str, keys: list[str], timeout: float = 600.0) -> dict[str, list[float]]:
    """Real terminal, end to end: send-keys until the captured screen changes (10 ms polling)."""
    session = f"benchk{time.monotonic_ns() % 10**8}"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "40",
                    f"{COMMAND} --model {model}; sleep 60"], check=True)
    results: dict[str, list[float]] = {}
    try:
        start = time.perf_counter()
        while "DONE" not in _capture(session):
            if time.perf_counter() - start > timeout:
                raise TimeoutError("the run did not finish")
            time.sleep(0.2)
        for key in ("n",) * 5:  # to block 0's attention
            subprocess.run(["tmux", "send-keys", "-t", session, key])
            time.sleep(1.0)
        for key in keys:
            before = _capture(session)
            sent = time.perf_counter()
            subprocess.run(["tmux", "send-keys", "-t", session, key])
            while _capture(session) == before and time.perf_counter() - sent < 10:
                time.sleep(0.005)
            results.setdefault(key, []).append(time.perf_counter() - sent)
            time.sleep(0.6)  # let any map computed in a worker land before the next key
    finally:
        subprocess.run(["tmux", "send-keys", "-t", session, "q"])
        time.sleep(0.5)
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    return results


# ---- 2. key → redraw (in-process) ------------------------------------------------------------------

def key_latency(model: str, repeats: int) -> dict[str, dict[str, list[float]]]:
    sys.path.insert(0, str(ROOT / "tests" / "tui"))
    from textual import events
    from tui_helpers import tui_args, until, view_ready

    from qwen3vl_inspect.tui.app import InspectApp
    from qwen3vl_inspect.tui.launch import build_app
    from qwen3vl_inspect.tui.screens.inspect_screen import InspectScreen

    clock: dict = {"key": None, "latency": None, "before": None}

    class TimedApp(InspectApp):
        async def on_event(self, event: events.Event) -> None:
            if isinstance(event, events.Key):
                clock.update(key=time.perf_counter(), latency=None, before=self.inspector.view_spec())
            await super().on_event(event)

    original_refresh = InspectScreen._compositor_refresh

    def timed_refresh(screen: InspectScreen) -> None:
        original_refresh(screen)
        app = screen.app
        changed = app.inspector.view_spec() != clock["before"]  # the key has been handled
        if clock["key"] is not None and changed and view_ready(app):
            clock["latency"], clock["key"] = time.perf_counter() - clock["key"], None

    InspectScreen._compositor_refresh = timed_refresh
    app = build_app(tui_args(model=model), show_timings=False)
    app = TimedApp(app.inspector)
    ins = app.inspector
    results: dict[str, dict[str, list[float]]] = {}

    async def press(pilot, key: str, label: str, visit: str) -> None:
        await pilot.press(key)
        await until(pilot, lambda: clock["latency"] is not None, timeout=120, what=f"the frame after {key}")
        results.setdefault(label, {}).setdefault(visit, []).append(clock["latency"])

    async def scenario() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: ins.done, timeout=900, what="the run")
            for _ in range(4):  # input → patchify → patch_embed → pos_embed
                await press(pilot, "n", "n (next stage)", "first")
            for _ in range(repeats):
                await press(pilot, "p", "p (previous stage)", "again")
                await press(pilot, "n", "n (next stage)", "again")
            await press(pilot, "n", "n (next stage)", "first")  # rotary
            await press(pilot, "n", "n (into block 0: attention)", "first")
            for _ in range(repeats):
                await press(pilot, "right_square_bracket", "] (next block)", "first")
                await press(pilot, "left_square_bracket", "[ (previous block)", "again")
                await press(pilot, "right_square_bracket", "] (next block)", "again")
                for key, label in (("full_stop", ". (next head)"), ("comma", ", (previous head)"),
                                   ("l", "l (query right)"), ("j", "j (query down)"), ("m", "m (mean/head)")):
                    await press(pilot, key, label, "first")
                    await press(pilot, key if key in "lj" else {"full_stop": "comma", "comma": "full_stop",
                                                                 "m": "m"}[key], label, "again")
            await press(pilot, "r", "r (rollout on)", "first")
            await press(pilot, "r", "r (rollout off)", "again")
            await press(pilot, "r", "r (rollout on)", "again")

    asyncio.run(scenario())
    InspectScreen._compositor_refresh = original_refresh
    return results


# ---- report -------------------------------------------------------------------------------------------

def _ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:7.1f} ms (max {max(values) * 1000:.1f}, n={len(values)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model for both parts (default: the CLI default, qwen3-vl-2b)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-tmux", action="store_true")
    args = parser.parse_args()
    from qwen3vl_inspect.session import DEFAULT_MODEL

    model = args.model or DEFAULT_MODEL
    print(f"# qwen3vl-inspect TUI latency · model {model} · demo image 400×300 → 432 patches · 120×40\n")
    if args.skip_tmux or shutil.which("tmux") is None:
        print("(tmux not found or skipped: no first-frame figures)\n")
    else:
        runs = [first_frame(model) for _ in range(args.repeats)]
        print("| command → … (real terminal, tmux) | median | max |")
        print("|---|---|---|")
        for mark in ("first frame", "model ready", "run done"):
            values = [r[mark] for r in runs if mark in r]
            if values:
                print(f"| {mark} | {statistics.median(values):.2f} s | {max(values):.2f} s |")
        print()
    results = key_latency(model, args.repeats)
    print("| key → redrawn frame (in-process) | first visit | again |")
    print("|---|---|---|")
    for label, visits in results.items():
        print(f"| {label} | {_ms(visits['first']) if 'first' in visits else '—'} | "
              f"{_ms(visits['again']) if 'again' in visits else '—'} |")
    if not args.skip_tmux and shutil.which("tmux"):
        print()
        tmux = key_latency_tmux(model, [".", ",", "l", "j", "]", "n", "p"] * 2)
        print("| key → screen changed (tmux, 5 ms polling, includes capture-pane) | median |")
        print("|---|---|")
        for key, values in tmux.items():
            print(f"| {key} | {_ms(values)} |")


if __name__ == "__main__":
    main()
