"""Memory heatmap: buckets (x, binned) by ways (y); occupancy and utility; flashes on read and write."""
from __future__ import annotations

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual.geometry import Size

from mosaic_cli.tui import palette
from mosaic_cli.tui.widgets.heatmap import HeatmapBlocks, bin_columns, empty_colour, sequential_colours
from mosaic_cli.tui.widgets.lines import LineWidget

FLASH_FRAMES = 6   # a touched slot stays lit for this many UI frames (~0.5 s at 12 Hz)


def bucket_cells(bucket: int, buckets: int, cells: int) -> range:
    """The columns that show ``bucket`` when ``buckets`` are fitted to ``cells`` by bin_columns."""
    if cells >= buckets:                    # each bucket repeated cells // buckets times
        k = cells // buckets
        return range(bucket * k, bucket * k + k)
    edges = np.linspace(0, buckets, cells + 1).round().astype(int)
    col = int(np.searchsorted(edges, bucket, side="right") - 1)
    return range(col, col + 1)


class MemoryView(LineWidget):
    """Two half-block maps of the selected layer's table (or the mean over layers):
    ``occ`` = fraction of valid slots, ``util`` = mean utility of the valid slots.
    Slots read since the last frames light up cyan in ``occ``, written ones magenta."""

    DEFAULT_CSS = "MemoryView { height: auto; }"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.valid: list[np.ndarray] = []     # per layer: [NB, W] in {0, 1}
        self.utility: list[np.ndarray] = []   # per layer: [NB, W]
        self.selected: int | None = None
        self.scale = ""   # occupancy, shown in the panel title
        # (layer, bucket, way) -> (frames left, "read" | "write")
        self.flashes: dict[tuple[int, int, int], tuple[int, str]] = {}

    def show(self, valid: list | None, utility: list | None, layer: int | None) -> None:
        """Take a snapshot's ``memory_valid`` / ``memory_utility`` (list[layer] of NB x W; a layer
        without memory has an empty table)."""
        self.valid = [np.asarray(v, dtype=float) for v in (valid or [])]
        self.utility = [np.asarray(u, dtype=float) for u in (utility or [])]
        self.selected = layer
        occ = [float(v.mean()) for v in self.shown(self.valid)] if self.valid else []
        full = 100 * float(np.mean(occ)) if occ else 0.0
        self.scale = (f"{full:.1f}% full" if full < 10 else f"{full:.0f}% full") if occ else ""
        self.changed(layout=self.rows() != self.size.height)

    def touch(self, reads: list | None, writes: list | None) -> None:
        """Start flashes for ``memory_reads`` / ``memory_writes`` (list[layer] of (bucket, way))."""
        for kind, per_layer in (("read", reads), ("write", writes)):
            for layer, slots in enumerate(per_layer or []):
                for bucket, way in slots:
                    if bucket < 0:
                        continue
                    # way -1: the whole bucket was probed (a read) -> light every way of it
                    for w in (range(self.ways()) if way < 0 else (way,)):
                        key = (layer, int(bucket), int(w))
                        # A write wins over a read in the same cell.
                        if kind == "write" or self.flashes.get(key, (0, ""))[1] != "write":
                            self.flashes[key] = (FLASH_FRAMES, kind)
        if self.flashes:
            self.changed()

    def ways(self) -> int:
        tables = [v for v in self.valid if v.ndim == 2 and v.size]
        return tables[0].shape[1] if tables else 0

    def tick(self) -> None:
        """Age the flashes by one UI frame; repaint while any is lit or has just gone out."""
        if not self.flashes:
            return
        self.flashes = {k: (n - 1, kind) for k, (n, kind) in self.flashes.items() if n > 1}
        self.changed()

    def shown(self, tables: list[np.ndarray]) -> list[np.ndarray]:
        """The selected layer's table, or every layer's: only layers with memory (a table of
        the same index in ``self.valid`` that is not empty)."""
        layers = range(len(tables)) if self.selected is None else [self.selected]
        return [tables[i] for i in layers
                if 0 <= i < len(tables) and i < len(self.valid) and self.valid[i].size]

    def no_memory(self) -> bool:
        """Whether the selected layer (or, with none selected, every layer) has no memory table."""
        return bool(self.valid) and not self.shown(self.valid)

    def build(self, width: int) -> HeatmapBlocks:
        """The renderable for a content ``width``: rows = ways, columns = bucket bins."""
        valid = self.shown(self.valid)
        if not valid:
            return HeatmapBlocks([])
        v = np.mean(np.stack(valid), axis=0)                      # [NB, W]
        u_layers = self.shown(self.utility) or [np.zeros_like(v)]
        u_stack = np.stack(u_layers)
        v_stack = np.stack(valid)
        u = np.where(v_stack > 0, u_stack, np.nan)
        counts = (~np.isnan(u)).sum(axis=0)
        util = np.where(counts > 0, np.nansum(u, axis=0) / np.maximum(counts, 1), np.nan)   # [NB, W]
        nb, ways = v.shape
        gutter = 5
        occ_bins = bin_columns(v.T, max(1, width - gutter))       # [W, cells]
        util_bins = bin_columns(util.T, max(1, width - gutter))
        nbins = occ_bins.shape[1]
        umax = max(1.0, float(np.nanmax(util_bins)) if np.any(~np.isnan(util_bins)) else 1.0)
        empty = empty_colour(self.app.current_theme.dark)
        occ_colours = sequential_colours(occ_bins, 1.0, empty, zero_is_empty=True)
        # Flashes are drawn over the occupancy map in the cell(s) showing the touched slot.
        for (layer, bucket, way), (_, kind) in self.flashes.items():
            if self.selected is not None and layer != self.selected:
                continue
            if 0 <= bucket < nb and 0 <= way < ways:
                colour = palette.WRITE_FLASH if kind == "write" else palette.READ_FLASH
                for col in bucket_cells(bucket, nb, nbins):
                    occ_colours[way][col] = colour
        return HeatmapBlocks([("occ", occ_colours), ("util", sequential_colours(util_bins, umax, empty))])

    def rows(self) -> int:
        """Text rows needed: two maps (occupancy, utility) of ways/2 half-block rows each."""
        return 2 * ((self.ways() + 1) // 2) if self.valid and not self.no_memory() else 1

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return self.rows()

    def lines(self, width: int) -> list[list[Segment]]:
        if not self.valid:
            return [[Segment("waiting for the engine…", Style(dim=True))]]
        if self.no_memory():
            which = "this model" if self.selected is None else f"layer {self.selected}"
            return [[Segment(f"{which} has no memory", Style(dim=True))]]
        return self.build(width).segment_lines()
