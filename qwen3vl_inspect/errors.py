"""The project's error types.

A user mistake (bad path, unreadable image, bad checkpoint, impossible size) is an `InputError`:
the CLI prints its message as one line and exits with code 2, without a traceback. Messages
name the file or value and say what to do.
"""

from __future__ import annotations

# exit codes of the non-interactive commands
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_NONFINITE = 0, 1, 2, 3
EXIT_DIVERGED = 4  # `compare`: a stage beyond tolerance, missing or reshaped


class InputError(ValueError):
    """A problem with what the user gave us; the message is shown as is."""


class ImageError(InputError):
    """An image file that can't be used (missing, empty, truncated, not an image, too large)."""


class CheckpointError(InputError):
    """A checkpoint folder that can't be loaded (missing files, wrong format, mismatched tensors)."""


class OutOfMemory(InputError):
    """RAM (or device memory) ran out for what the user asked: not a bug but a size to lower; one line,
    exit code 2, naming what ran out and what to ask for instead (see `memory_errors`)."""
