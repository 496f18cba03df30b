"""How numbers, shapes and NaN/Inf counts are written, everywhere: probes, tables, TUI, notebooks.

Kept apart so the stats modules stay pure: they return numbers, and only rendering code
decides how many digits a human wants to read.
"""

from __future__ import annotations

import html
import unicodedata
from collections.abc import Iterable, Sequence

# Unicode categories that move the cursor, change colours or reorder text when printed raw: control
# characters (ESC starts colour and OSC title/hyperlink sequences), format characters (RTL overrides,
# zero-width joiners), line/paragraph separators, and lone surrogates (undecodable bytes in file names).
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(char: str) -> str:
    """Python's own spelling of the character: `\\n`, `\\x1b`, `\\u202e`, `\\U000e0001`."""
    code = ord(char)
    if char in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[char]
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def safe_text(text: object) -> str:
    """`text` with every character that could act on a terminal written as a visible escape (`\\x1b`,
    `\\n`, `\\u202e`): what users type (file names, --text, model paths) is shown, never obeyed, and
    a message stays on one line. Printable characters of any script pass unchanged."""
    value = str(text)
    if all(c.isprintable() for c in value):  # the common case: nothing to escape
        return value
    parts = []
    for char in value:
        if unicodedata.category(char) in _UNSAFE_CATEGORIES or (not char.isprintable() and char != " "):
            parts.append(_escape(char))
        else:
            parts.append(char)
    return "".join(parts)


def fmt_shape(shape: Sequence[int] | None) -> str:
    """`[432, 1024]`: the notation the seed guide and transformers' docs use."""
    if shape is None:
        return "—"
    return "[" + ", ".join(str(int(s)) for s in shape) + "]"


def fmt_float(value: float | None, digits: int = 4) -> str:
    """Short general-format float; `—` for "not defined" (empty tensor, all non-finite)."""
    if value is None:
        return "—"
    return f"{value:.{digits}g}"


def nonfinite_parts(nan: int, posinf: int = 0, neginf: int = 0) -> list[str]:
    """`["NaN×3", "+Inf×1"]`: spelled out so it reads without colour too; empty when all finite."""
    return [f"{label}×{count}" for label, count in (("NaN", nan), ("+Inf", posinf), ("-Inf", neginf)) if count]


def fmt_count(n: int) -> str:
    """Parameter counts as people say them: 1.23M, 4.5B."""
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g}{unit}"
    return str(n)


def fmt_bytes(n: int | None) -> str:
    """Binary units, because that is what allocators and /proc report."""
    if n is None:
        return "—"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.2f} {unit}"
        value /= 1024
    return f"{value:.2f} TiB"  # unreachable; keeps type checkers content


def html_table(rows: Iterable[Sequence[object]], header: Sequence[str] | None = None, caption: str = "") -> str:
    """A plain HTML table for Jupyter's `_repr_html_` (escaped; no styling framework needed)."""
    parts = ["<table>"]
    if caption:
        parts.append(f"<caption>{html.escape(caption)}</caption>")
    if header:
        parts.append("<tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in header) + "</tr>")
    for row in rows:
        parts.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>")
    parts.append("</table>")
    return "".join(parts)
