"""Where a command writes (`attention -o`, `export OUT.onnx`): checked before any work, so a minute of
model time never ends in "No such file or directory"; a write that still fails afterwards is one line.

The checks are cheap and honest: the folder must exist and take a new file (tried for real with a
probe file, which catches read-only file systems and permissions even for root), the name must fit
the file system's limit, the path must not be a folder, and it must not be one of the inputs (a PNG
written over the image it was computed from would destroy the input).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from qwen3vl_inspect.errors import InputError
from qwen3vl_inspect.formatting import safe_text


def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):  # not POSIX, or the file system won't say
        return 255


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_output(text: str, suffixes: tuple[str, ...], inputs: Iterable[Path] = (), flag: str = "-o") -> Path:
    """The output path, refused (InputError, one line) when writing there would fail or destroy an input."""
    path = Path(text).expanduser()
    shown = safe_text(path)
    try:
        return _check(path, shown, suffixes, inputs, flag)
    except OSError as exc:  # a path the system refuses to even look at (a folder name over the limit, a loop)
        raise InputError(f"{flag} {shown}: {exc.strerror or exc}; choose another {flag} path") from None


def _check(path: Path, shown: str, suffixes: tuple[str, ...], inputs: Iterable[Path], flag: str) -> Path:
    folder = path.parent
    limit = _name_max(folder) if folder.is_dir() else 255
    length = len(os.fsencode(path.name))
    if length > limit:
        raise InputError(f"{flag}: the file name is {length} bytes long, over this file system's limit of {limit}; "
                         f"choose a shorter name")
    if path.is_dir():
        example = safe_text(path / ("out" + suffixes[0]))
        raise InputError(f"{flag} {shown}: is a folder; give a file name such as {example}")
    if path.suffix.lower() not in suffixes:
        raise InputError(f"{flag} {shown}: the output must be a {' or '.join(suffixes)} file")
    if not folder.exists():
        raise InputError(f"{flag} {shown}: folder does not exist ({safe_text(folder)}); create it or choose another "
                         f"{flag} path")
    if not folder.is_dir():
        raise InputError(f"{flag} {shown}: {safe_text(folder)} is a file, not a folder; choose another {flag} path")
    for source in inputs:
        if path.resolve() == Path(source).expanduser().resolve() or _same_file(path, Path(source)):
            raise InputError(f"{flag} {shown} is the input image: writing would overwrite it; "
                             f"choose another {flag} path")
    if path.exists() and not os.access(path, os.W_OK):
        raise InputError(f"{flag} {shown}: the file exists and is not writable; choose another {flag} path")
    try:  # the one honest test of "can a file be created here": create one
        handle, probe = tempfile.mkstemp(dir=folder, prefix=".qwen3vl-inspect-", suffix=".tmp")
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        raise InputError(f"{flag} {shown}: cannot create a file in {safe_text(folder)} (the system says: "
                         f"{exc.strerror or exc}); choose a folder you can write to") from None
    return path


def write_failed(path: Path, exc: OSError, what: str) -> InputError:
    """A write that failed after the run (disk full, folder removed meanwhile): one line, not a traceback."""
    return InputError(f"could not write {safe_text(path)}: {exc.strerror or exc}; {what} was computed but not "
                      f"saved, choose another output path")
