"""Registers heatmap: layer x timescale x channels (channels binned to the panel width)."""
from __future__ import annotations

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual.geometry import Size

from mosaic_cli.tui.widgets.heatmap import HeatmapBlocks, bin_columns, diverging_colours, empty_colour
from mosaic_cli.tui.widgets.lines import LineWidget


class RegistersView(LineWidget):
    """Signed register values s_k of one layer (one text row per timescale, fast at the top)
    or of all layers (half-block rows, two timescales per text row)."""

    DEFAULT_CSS = "RegistersView { height: auto; }"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.registers: list[np.ndarray] = []   # per layer: [K, R]
        self.selected: int | None = None           # None = all layers
        self.vmax = 1e-3
        self.scale = ""   # the colour scale, shown in the panel title

    def show(self, registers: list | None, layer: int | None) -> None:
        """Take a snapshot's ``registers`` (list[layer] of [K][R] floats) and the selected layer."""
        self.registers = [np.asarray(r, dtype=float).reshape(len(r), -1) for r in (registers or [])]
        self.selected = layer
        shown = self.shown_layers()
        vmax = max((float(np.nanmax(np.abs(self.registers[i]))) for i in shown if self.registers[i].size), default=0.0)
        self.vmax = max(vmax, 1e-3)
        self.scale = f"±{self.vmax:.2g}" if shown else ""
        self.changed(layout=self.rows() != self.size.height)

    def shown_layers(self) -> list[int]:
        if self.selected is None:
            return list(range(len(self.registers)))
        return [self.selected] if 0 <= self.selected < len(self.registers) else []

    def build(self, width: int) -> HeatmapBlocks:
        """The renderable for a content ``width`` (channels binned to fit after the label gutter)."""
        if not self.registers:
            return HeatmapBlocks([])
        blocks = []
        gutter = 4
        for i in self.shown_layers():
            binned = bin_columns(self.registers[i], max(1, width - gutter))
            colours = diverging_colours(binned, self.vmax, empty_colour(self.app.current_theme.dark))
            if self.selected is None:
                blocks.append((f"L{i}", colours))
            else:
                # One text row per timescale: duplicate each row into both halves of its cell.
                for k, row in enumerate(colours):
                    blocks.append((f"τ{k}", [row, row]))
        return HeatmapBlocks(blocks)

    def rows(self) -> int:
        """Text rows needed: one per timescale of one layer, or half that per layer for all layers."""
        shown = self.shown_layers()
        if not shown:
            return 1
        if self.selected is None:
            return sum((self.registers[i].shape[0] + 1) // 2 for i in shown)
        return self.registers[shown[0]].shape[0]

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return self.rows()

    def lines(self, width: int) -> list[list[Segment]]:
        if not self.registers:
            return [[Segment("waiting for the engine…", Style(dim=True))]]
        return self.build(width).segment_lines()
