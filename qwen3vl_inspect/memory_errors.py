"""Out of memory is a size the user can change, not a crash: recognise it and say what to lower.

torch reports running out in several ways: `torch.OutOfMemoryError` (a device allocator), Python's
`MemoryError`, and a plain `RuntimeError` from the CPU allocator ("DefaultCPUAllocator: not enough
memory: you tried to allocate …"). `guard(what)` turns each into an `OutOfMemory` (an InputError: the
CLI prints one line and exits 2) that names the step that ran out and what to ask for instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from qwen3vl_inspect.errors import OutOfMemory

_RUNTIME_MARKERS = ("not enough memory", "defaultcpuallocator", "out of memory", "can't allocate memory",
                    "failed to allocate")
# what lowers the memory a step needs, per kind of step
ADVICE = {
    "load": "use --dtype bfloat16 (half the weights' memory) or a smaller checkpoint",
    "run": "use a smaller image (--max-pixels 262144) or --dtype bfloat16",
    "attention": "ask for one head (--head 0) or a smaller image (--max-pixels 262144)",
}


def is_out_of_memory(exc: BaseException) -> bool:
    """True for every way torch and Python say an allocation failed (the exception itself or its cause)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (MemoryError, torch.OutOfMemoryError)):
            return True
        if isinstance(exc, RuntimeError) and any(m in str(exc).lower() for m in _RUNTIME_MARKERS):
            return True
        exc = getattr(exc, "cause", None) or exc.__cause__  # StageError keeps the stage's exception in `cause`
    return False


def which_memory(exc: BaseException) -> str:
    """"GPU memory" when a device allocator failed, else "memory" (RAM)."""
    return "GPU memory" if isinstance(getattr(exc, "cause", exc), torch.OutOfMemoryError) else "memory"


def out_of_memory(exc: BaseException, what: str, advice: str = ADVICE["run"]) -> OutOfMemory:
    """One line: `out of memory while drawing the stats table; use a smaller image …`."""
    return OutOfMemory(f"out of {which_memory(exc)} while {what}; {advice}")


@contextmanager
def guard(what: str, advice: str = ADVICE["run"]) -> Iterator[None]:
    """Re-raise an allocation failure inside the block as an OutOfMemory naming `what`; others pass."""
    try:
        yield
    except OutOfMemory:
        raise
    except (Exception, MemoryError) as exc:
        if is_out_of_memory(exc):
            raise out_of_memory(exc, what, advice) from None
        raise
