"""Process and CUDA memory, right now: is it the activations or the weights that fill memory?

On CPU (the common case here) the number that matters is the process RSS and its peak, read
from /proc/self/status (no psutil dependency); on GPU, the caching allocator's view per device.
`monitor_memory()` prints and returns, as the seed scripts call it for its output.
"""

from __future__ import annotations

import resource
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
from rich.console import Console, RenderableType
from rich.table import Table

from qwen3vl_inspect.formatting import fmt_bytes, html_table


@dataclass(frozen=True)
class CudaMemory:
    device: int
    name: str
    allocated: int  # bytes held by live tensors
    reserved: int  # bytes the caching allocator holds (what nvidia-smi shows, roughly)
    max_allocated: int  # peak of `allocated` since start or the last reset_peak_memory_stats


@dataclass(frozen=True)
class MemorySnapshot:
    rss_bytes: int | None  # resident set size now; None where the OS doesn't tell us
    peak_rss_bytes: int | None  # high-water mark of RSS over the process's life
    cuda: tuple[CudaMemory, ...] = field(default_factory=tuple)
    label: str = ""

    def _rows(self) -> list[tuple[str, str]]:
        rows = [("process RSS", fmt_bytes(self.rss_bytes)), ("process peak RSS", fmt_bytes(self.peak_rss_bytes))]
        for gpu in self.cuda:
            prefix = f"cuda:{gpu.device}"
            rows += [
                (f"{prefix} allocated", fmt_bytes(gpu.allocated)),
                (f"{prefix} reserved", fmt_bytes(gpu.reserved)),
                (f"{prefix} max allocated", fmt_bytes(gpu.max_allocated)),
            ]
        return rows

    def __rich__(self) -> RenderableType:
        title = f"Memory — {self.label}" if self.label else "Memory"
        table = Table(title=title, title_justify="left", show_header=False)
        table.add_column(style="cyan")
        table.add_column(justify="right")
        for name, value in self._rows():
            table.add_row(name, value)
        if not self.cuda:
            table.add_row("cuda", "not available")
        return table

    def _repr_html_(self) -> str:
        return html_table(self._rows(), caption=self.label or "Memory")


def _proc_status() -> dict[str, int]:
    """VmRSS / VmHWM in bytes from /proc/self/status (Linux)."""
    values: dict[str, int] = {}
    path = Path("/proc/self/status")
    if not path.exists():
        return values
    for line in path.read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            parts = rest.split()
            if parts and parts[0].isdigit():
                values[key] = int(parts[0]) * 1024  # reported in kB
    return values


def memory_snapshot(label: str = "") -> MemorySnapshot:
    """Read the numbers without printing."""
    status = _proc_status()
    peak = status.get("VmHWM")
    if peak is None:  # macOS reports bytes, Linux kilobytes
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak = maxrss if sys.platform == "darwin" else maxrss * 1024
    cuda: list[CudaMemory] = []
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            cuda.append(CudaMemory(
                device=index,
                name=torch.cuda.get_device_name(index),
                allocated=torch.cuda.memory_allocated(index),
                reserved=torch.cuda.memory_reserved(index),
                max_allocated=torch.cuda.max_memory_allocated(index),
            ))
    return MemorySnapshot(status.get("VmRSS"), peak, tuple(cuda), label)


def monitor_memory(label: str = "", print_: bool = True, console: Console | None = None) -> MemorySnapshot:
    """Print (unless `print_=False`) and return a `MemorySnapshot`."""
    snapshot = memory_snapshot(label)
    if print_:
        (console or Console()).print(snapshot)
    return snapshot
