"""Half-block heatmaps: each text row shows two matrix rows ('▀' with fg = top, bg = bottom)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.segment import Segment
from rich.style import Style

from mosaic_cli.tui import palette

Colours = list[list[str | None]]   # rows x cols of hex colours; None = leave the background


def empty_colour(dark: bool) -> str:
    """The colour of an empty cell on a dark / light theme."""
    return palette.EMPTY_COLOUR if dark else palette.EMPTY_COLOUR_LIGHT


def bin_columns(matrix: np.ndarray, nbins: int) -> np.ndarray:
    """Fit the columns of ``matrix`` [rows, cols] to at most ``nbins`` cells -> [rows, <= nbins].

    Wider than the panel: columns are averaged into ``nbins`` bins (NaN ignored inside a bin; an
    all-NaN bin stays NaN). Narrower: each column is repeated a whole number of times, so a
    large terminal shows bigger cells, never interpolated ones.
    """
    rows, cols = matrix.shape
    if cols and nbins >= 2 * cols:
        return np.repeat(matrix.astype(float), nbins // cols, axis=1)
    nbins = max(1, min(nbins, cols))
    if nbins == cols:
        return matrix.astype(float, copy=True)
    edges = np.linspace(0, cols, nbins + 1).round().astype(int)
    out = np.full((rows, nbins), np.nan)
    for b in range(nbins):
        chunk = matrix[:, edges[b]:edges[b + 1]]
        ok = ~np.isnan(chunk)
        counts = ok.sum(axis=1)
        sums = np.where(ok, chunk, 0.0).sum(axis=1)
        out[:, b] = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return out


def sequential_colours(values: np.ndarray, vmax: float = 1.0, empty: str = palette.EMPTY_COLOUR,
                       zero_is_empty: bool = False) -> Colours:
    """Map magnitudes [rows, cols] in [0, vmax] to ramp colours; NaN (and 0 if ``zero_is_empty``) -> ``empty``."""
    top = palette.LEVELS - 1
    scaled = np.nan_to_num(values) / max(vmax, 1e-9)
    if zero_is_empty:
        # zero is drawn as empty, so the ramp starts a quarter up: a lone slot in a wide bin stays visible
        low = palette.LEVELS // 4
        levels = np.clip(np.rint(low + scaled * (top - low)), low, top)
    else:
        levels = np.clip(np.rint(scaled * top), 0, top)
    blank = np.isnan(values) | ((values <= 0) if zero_is_empty else False)
    ramp = [palette.sequential(i) for i in range(palette.LEVELS)]
    return [[empty if b else ramp[k] for k, b in zip(row_levels, row_blank)]
            for row_levels, row_blank in zip(levels.astype(int).tolist(), blank.tolist())]


def diverging_colours(values: np.ndarray, vmax: float, empty: str = palette.EMPTY_COLOUR) -> Colours:
    """Map signed values [rows, cols] in [-vmax, vmax] to the diverging ramp; NaN -> ``empty``."""
    half = (palette.LEVELS - 1) / 2
    levels = np.clip(np.rint(half + half * np.nan_to_num(values) / max(vmax, 1e-9)), 0, palette.LEVELS - 1)
    blank = np.isnan(values)
    ramp = [palette.diverging(i) for i in range(palette.LEVELS)]
    return [[empty if b else ramp[k] for k, b in zip(row_levels, row_blank)]
            for row_levels, row_blank in zip(levels.astype(int).tolist(), blank.tolist())]


@dataclass
class HeatmapBlocks:
    """A Rich renderable: labelled blocks of half-block cells stacked vertically.

    ``blocks`` is a list of (label, colours); a block with an odd number of rows gets
    its last text row's lower half left as background.
    """
    blocks: list[tuple[str, Colours]]

    def gutter(self) -> int:
        return max((len(label) for label, _ in self.blocks), default=0) + 1

    def width(self) -> int:
        cols = max((len(c[0]) for _, c in self.blocks if c), default=0)
        return self.gutter() + cols

    def height(self) -> int:
        return sum((len(c) + 1) // 2 for _, c in self.blocks)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(self.width(), self.width())

    def segment_lines(self) -> list[list[Segment]]:
        """One list of segments per text row."""
        gutter = self.gutter()
        label_style = Style(dim=True)
        out: list[list[Segment]] = []
        for label, colours in self.blocks:
            for r in range(0, len(colours), 2):
                text = label if r == 0 else ""
                line = [Segment(text.ljust(gutter), label_style)]
                top = colours[r]
                bottom = colours[r + 1] if r + 1 < len(colours) else [None] * len(top)
                for t, b in zip(top, bottom):
                    if t is None and b is None:
                        line.append(Segment(" "))
                    elif b is None:
                        line.append(Segment("▀", palette.half_block_style(t, None)))
                    elif t is None:
                        line.append(Segment("▄", palette.half_block_style(b, None)))
                    else:
                        line.append(Segment("▀", palette.half_block_style(t, b)))
                out.append(line)
        return out

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for line in self.segment_lines():
            yield from line
            yield Segment.line()
