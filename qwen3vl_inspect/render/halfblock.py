"""Pictures in a terminal: two pixels per cell with the upper-half block `▀`.

The foreground colour paints the top pixel and the background colour the bottom one, so a cell
is two roughly square pixels and a W×2H RGB array fills W columns and H rows. Rows of segments
are built once per picture and kept (terminal views redraw the same picture many times), and
styles are shared between cells of the same colour pair.

Some terminals (tmux without truecolor, plain xterm-256color) show only the 256-colour palette;
there, a blended heatmap is snapped to muddy neighbours of the 6×6×6 cube. `HEAT_256` is a ramp
of palette entries chosen so that brightness rises monotonically from black through purple,
red and orange to white: a value's rank stays readable however the terminal maps colours.
`HEAT_16` does the same with the 16 standard colours, for a terminal that has only those.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from rich.color import Color
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.segment import Segment
from rich.style import Style

UPPER_HALF = "▀"

# xterm-256 palette entries, dark to bright (an "inferno"-like ramp inside the 6×6×6 cube).
HEAT_256: tuple[int, ...] = (16, 17, 53, 54, 90, 126, 161, 196, 197, 166, 202, 208, 214, 220, 226, 228, 230, 231)

# The 16 standard colours (TERM=xterm without "256color"), dark to bright in xterm's default palette:
# black, blue, red, bright red, yellow, bright yellow, white.
HEAT_16: tuple[int, ...] = (0, 4, 1, 9, 3, 11, 15)

_CUBE_LEVELS = (0, 95, 135, 175, 215, 255)


def palette_rgb(index: int) -> tuple[int, int, int]:
    """RGB of an xterm-256 palette entry in the 6×6×6 cube (16–231) or the grey ramp (232–255)."""
    if 16 <= index <= 231:
        index -= 16
        return _CUBE_LEVELS[index // 36], _CUBE_LEVELS[index // 6 % 6], _CUBE_LEVELS[index % 6]
    if 232 <= index <= 255:
        grey = 8 + 10 * (index - 232)
        return grey, grey, grey
    raise ValueError(f"palette entry {index} is not in the cube or grey ramp (16–255)")


def luminance(rgb: tuple[int, int, int]) -> float:
    r, g, b = rgb
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def heat_indices(values01: np.ndarray, ramp: tuple[int, ...] = HEAT_256) -> np.ndarray:
    """Values in [0, 1] → entries of a palette ramp (uint8 palette numbers), same shape."""
    steps = len(ramp) - 1
    ranks = np.clip(np.rint(np.nan_to_num(values01, nan=0.0) * steps), 0, steps).astype(np.int64)
    return np.asarray(ramp, dtype=np.uint8)[ranks]


def ramp_for(color_system: str | None) -> tuple[int, ...] | None:
    """The palette ramp a terminal needs (rich's color_system name), or None when it has truecolor."""
    if color_system in ("truecolor", None):
        return None
    return HEAT_256 if color_system == "256" else HEAT_16


def heat_rgb_256(values01: np.ndarray) -> np.ndarray:
    """The `HEAT_256` ramp as RGB ([..., 3] uint8), for drawing it where the terminal has truecolor too."""
    table = np.array([palette_rgb(i) for i in HEAT_256], dtype=np.uint8)
    steps = len(HEAT_256) - 1
    ranks = np.clip(np.rint(np.nan_to_num(values01, nan=0.0) * steps), 0, steps).astype(np.int64)
    return table[ranks]


@lru_cache(maxsize=65536)
def _rgb_style(top: tuple[int, int, int], bottom: tuple[int, int, int] | None) -> Style:
    return Style(color=Color.from_rgb(*top), bgcolor=None if bottom is None else Color.from_rgb(*bottom))


@lru_cache(maxsize=65536)
def _palette_style(top: int, bottom: int | None) -> Style:
    return Style(color=Color.from_ansi(top), bgcolor=None if bottom is None else Color.from_ansi(bottom))


class HalfBlock:
    """A rich renderable of a picture given as RGB ([2H, W, 3] uint8) or palette numbers ([2H, W] uint8).

    An odd pixel height leaves the last row's lower half empty (the terminal background).
    `lines` are built on first use and cached; `__rich_console__` and textual's line API both read them.
    """

    def __init__(self, pixels: np.ndarray) -> None:
        pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
        if pixels.ndim == 3 and pixels.shape[-1] == 3:
            self.palette = False
        elif pixels.ndim == 2:
            self.palette = True
        else:
            raise ValueError(f"expected [H, W, 3] RGB or [H, W] palette numbers, got shape {pixels.shape}")
        self.pixels = pixels
        self.height_px, self.width = pixels.shape[:2]
        self.height = (self.height_px + 1) // 2
        self._lines: list[list[Segment]] | None = None

    @property
    def lines(self) -> list[list[Segment]]:
        """One list of segments per terminal row, runs of identical cells joined into one segment."""
        if self._lines is None:
            self._lines = [self._row(y) for y in range(self.height)]
        return self._lines

    def _row(self, y: int) -> list[Segment]:
        top = self.pixels[2 * y]
        bottom = self.pixels[2 * y + 1] if 2 * y + 1 < self.height_px else None
        if self.palette:
            tops = top.tolist()
            bottoms = [None] * self.width if bottom is None else bottom.tolist()
            styles = [_palette_style(t, b) for t, b in zip(tops, bottoms)]
        else:
            tops = [tuple(p) for p in top.tolist()]
            bottoms = [None] * self.width if bottom is None else [tuple(p) for p in bottom.tolist()]
            styles = [_rgb_style(t, b) for t, b in zip(tops, bottoms)]
        segments: list[Segment] = []
        run_style, run = styles[0] if styles else None, 0
        for style in styles:
            if style is run_style:
                run += 1
                continue
            segments.append(Segment(UPPER_HALF * run, run_style))
            run_style, run = style, 1
        if run:
            segments.append(Segment(UPPER_HALF * run, run_style))
        return segments

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        newline = Segment.line()
        for line in self.lines:
            yield from line
            yield newline

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(self.width, self.width)
