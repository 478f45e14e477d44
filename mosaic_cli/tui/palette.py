"""Colours and glyphs shared by the TUI widgets.

Every colour here is a mid-luminance hue chosen to read on both the dark and the
light theme: heatmap ramps never reach pure black or pure white, and glyph colours
avoid the pale yellows that vanish on a light background.
"""
from __future__ import annotations

from functools import lru_cache

from rich.color import Color
from rich.style import Style

# A cividis-like ramp (navy -> grey -> yellow) for magnitudes in [0, 1]: no cyan or magenta in
# it, so the read / write flashes stand out, and readable by red-green colour-blind people.
_SEQUENTIAL = ["#123570", "#3b496c", "#575d6d", "#707173", "#8a8779", "#a69d75", "#c4b56c", "#e4cf5b", "#fee838"]
# A diverging ramp for signed values in [-1, 1]; the centre is a grey that reads on both themes.
_DIVERGING = ["#2b4ea8", "#4b73c9", "#7d97cf", "#8c8c8c", "#d98b6d", "#d0603f", "#b3261e"]
LEVELS = 16
EMPTY_COLOUR = "#303030"        # an empty / invalid cell on the dark theme
EMPTY_COLOUR_LIGHT = "#d4d4d4"  # ... and on the light theme
READ_FLASH = "#00e5ff"     # memory slot read since the last frames
WRITE_FLASH = "#ff3df0"    # memory slot written since the last frames

# One glyph and colour per opcode (engine.vm.Opcode names, in their enum order).
OPCODE_GLYPHS: dict[str, tuple[str, str, str]] = {
    # name: (glyph, colour, short legend label)
    "NOP": ("·", "#808080", "nop"),
    "READ_MEM": ("r", "#1f9ed1", "read"),
    "WRITE_MEM": ("W", "#d6336c", "write"),
    "CLEAR_MEM": ("x", "#e8590c", "clear"),
    "IDLE": ("z", "#7950f2", "idle"),
    "GATE_UP": ("▲", "#2f9e44", "up"),
    "GATE_DOWN": ("▼", "#a0522d", "down"),
    "SCAN": ("s", "#0c8599", "scan"),
    "COMMIT": ("C", "#c2255c", "commit"),
    "RESPOND": ("»", "#e67700", "respond"),
}
UNKNOWN_OPCODE = ("?", "#808080", "?")

STATUS_COLOURS = {"awake": "#2f9e44", "idle": "#1f78b4", "consolidating": "#e67700"}


def _lerp_hex(ramp: list[str], t: float) -> str:
    """Colour at position ``t`` in [0, 1] along ``ramp`` (piecewise linear in RGB)."""
    t = min(1.0, max(0.0, t))
    x = t * (len(ramp) - 1)
    i = min(int(x), len(ramp) - 2)
    f = x - i
    a = Color.parse(ramp[i]).triplet
    b = Color.parse(ramp[i + 1]).triplet
    r, g, bl = (round(a[k] + (b[k] - a[k]) * f) for k in range(3))
    return f"#{r:02x}{g:02x}{bl:02x}"


@lru_cache(maxsize=None)
def sequential(level: int) -> str:
    """Colour of quantised level ``level`` in [0, LEVELS-1] of the magnitude ramp."""
    return _lerp_hex(_SEQUENTIAL, level / (LEVELS - 1))


@lru_cache(maxsize=None)
def diverging(level: int) -> str:
    """Colour of quantised level ``level`` in [0, LEVELS-1] of the signed ramp (centre = zero)."""
    return _lerp_hex(_DIVERGING, level / (LEVELS - 1))


@lru_cache(maxsize=4096)
def half_block_style(top: str, bottom: str | None) -> Style:
    """Cached style for a '▀' cell: the top matrix row is the foreground, the bottom the background."""
    return Style(color=top, bgcolor=bottom)
