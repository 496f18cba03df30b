"""What went wrong in a worker thread, typed, so the screen decides how to show it without parsing text."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from qwen3vl_inspect.errors import InputError
from qwen3vl_inspect.formatting import safe_text
from qwen3vl_inspect.memory_errors import ADVICE, is_out_of_memory, out_of_memory
from qwen3vl_inspect.stage import StageError


class FailureKind(Enum):
    BAD_INPUT = "bad input"  # the user's image, model or request: the message says what to do
    OUT_OF_MEMORY = "out of memory"  # a smaller image (--max-pixels), bfloat16 or one head helps
    ERROR = "error"  # anything else: the exception's type and message, as is


@dataclass(frozen=True)
class Failure:
    kind: FailureKind
    text: str  # one line, ready to show: what the user typed in it is escaped (`safe_text`)

    @classmethod
    def of(cls, exc: BaseException, what: str | None = None, advice: str = ADVICE["run"]) -> Failure:
        """`what` names the step for an out-of-memory line ("drawing this view"); default: the failed stage."""
        cause = exc.cause if isinstance(exc, StageError) else exc
        if isinstance(cause, InputError):
            return cls(FailureKind.BAD_INPUT, safe_text(cause))
        if is_out_of_memory(cause):
            step = what or (f"computing stage {exc.stage}" if isinstance(exc, StageError) else "computing it")
            return cls(FailureKind.OUT_OF_MEMORY, safe_text(out_of_memory(cause, step, advice)))
        return cls(FailureKind.ERROR, safe_text(f"{type(cause).__name__}: {cause}"))

    def __str__(self) -> str:
        return self.text


__all__ = ["Failure", "FailureKind", "is_out_of_memory"]
