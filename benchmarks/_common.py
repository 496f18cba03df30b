"""Shared bits of the benchmark scripts: a synthetic image of a given patch count, timing, RSS."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image

# (height, width) in pixels giving these patch counts with Qwen3-VL's 16-pixel patches
SIZES = {432: (288, 384), 1024: (512, 512), 2304: (768, 768)}


def image_with_patches(patches: int, seed: int = 0) -> Image.Image:
    height, width = SIZES[patches]
    noise = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(noise)


def median_seconds(fn, repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interleaved_medians(first, second, repeats: int) -> tuple[float, float]:
    """Median wall times of two callables timed alternately, so drift in machine load hits both alike."""
    first(), second()  # warm-up
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for fn, bucket in ((first, times[0]), (second, times[1])):
            start = time.perf_counter()
            fn()
            bucket.append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def rss_bytes(field: str = "VmRSS") -> int:
    """Current (VmRSS) or peak (VmHWM) resident memory of this process, from /proc."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak_rss() -> None:
    """Make VmHWM start again from the current RSS (Linux: write 5 to clear_refs)."""
    Path("/proc/self/clear_refs").write_text("5")
