"""What went wrong in a worker thread, typed, so the screen decides how to show it without parsing text."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from qwen3vl_inspect.errors import InputError
from qwen3vl_inspect.stage import StageError


class FailureKind(Enum):
    BAD_INPUT = "bad input"  # the user's image, model or request: the message says what to do
    OUT_OF_MEMORY = "out of memory"  # a smaller image (--max-pixels), bfloat16 or one head helps
    ERROR = "error"  # anything else: the exception's type and message, as is


@dataclass(frozen=True)
class Failure:
    kind: FailureKind
    text: str  # one line, ready to show

    @classmethod
    def of(cls, exc: BaseException) -> Failure:
        cause = exc.cause if isinstance(exc, StageError) else exc
        if isinstance(cause, InputError):
            return cls(FailureKind.BAD_INPUT, str(cause))
        if is_out_of_memory(cause):
            return cls(FailureKind.OUT_OF_MEMORY, f"out of memory ({type(cause).__name__}: {cause}); try a smaller "
                                                  "image (--max-pixels) or --dtype bfloat16")
        return cls(FailureKind.ERROR, f"{type(cause).__name__}: {cause}")

    def __str__(self) -> str:
        return self.text


def is_out_of_memory(exc: BaseException) -> bool:
    """torch raises OutOfMemoryError on accelerators and a RuntimeError from the CPU allocator."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    return isinstance(exc, RuntimeError) and ("DefaultCPUAllocator" in str(exc) or "out of memory" in str(exc))
