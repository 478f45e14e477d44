"""Drive bands: each drive's value against its healthy band, its urgency; an impulse flashes its drive."""
from __future__ import annotations

from rich.console import Group
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.geometry import Size

from mosaic_cli.tui.widgets.lines import LineWidget

IMPULSE_FRAMES = 18   # an impulse keeps its drive lit for this many UI frames (~1.5 s at 12 Hz)
IN_BAND = "#2f9e44"
OUT_BAND = "#e8590c"
BAND_TRACK = "#2f9e44"
OFF_TRACK = "#808080"
FLASH = Style(color="#ffffff", bgcolor="#c2255c", bold=True)


def short(value: float) -> str:
    """``value`` in at most 5 characters (NaN -> '—')."""
    if value != value:
        return "—"
    a = abs(value)
    if a < 10:
        return f"{value:.2f}"
    if a < 100:
        return f"{value:.1f}"
    if a < 10_000:
        return f"{value:.0f}"
    if a < 1e6:
        return f"{value / 1000:.0f}k"
    return "≫" if value > 0 else "≪"


def band_track(value: float, low: float, high: float, width: int) -> Text:
    """A ``width``-cell axis: the band [low, high] drawn thick, the rest thin, a dot at ``value``."""
    if value != value:   # NaN: the metric is not measured yet -> the band alone
        value_known, value = False, low
    else:
        value_known = True
    lo, hi = min(low, value), max(high, value)
    pad = 0.25 * max(high - low, 1e-6)
    lo, hi = lo - pad, hi + pad
    span = hi - lo
    pos = min(width - 1, max(0, int((value - lo) / span * width)))
    inside = low <= value <= high
    text = Text()
    for i in range(width):
        x = lo + (i + 0.5) / width * span
        if i == pos and value_known:
            text.append("●", Style(color=IN_BAND if inside else OUT_BAND, bold=True))
        elif low <= x <= high:
            text.append("━", Style(color=BAND_TRACK))
        else:
            text.append("─", Style(color=OFF_TRACK, dim=True))
    return text


class DriveBands(LineWidget):
    """One row per intrinsic drive: name, band track, value, urgency."""

    DEFAULT_CSS = "DriveBands { height: auto; }"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.drives: list[dict] = []
        self.flashes: dict[str, int] = {}   # drive name -> frames left

    def show(self, drives: list | None) -> None:
        """Take a snapshot's ``drives`` (list of dict(name, value, low, high, urgency))."""
        self.drives = [dict(d) for d in (drives or [])]
        self.changed(layout=len(self.names()) != self.size.height)

    def impulse(self, drive: str) -> None:
        """Light up ``drive`` (called when an Impulse event names it)."""
        self.flashes[drive] = IMPULSE_FRAMES
        self.changed(layout=len(self.names()) != self.size.height)

    def tick(self) -> None:
        """Age the impulse flashes by one UI frame."""
        if not self.flashes:
            return
        self.flashes = {k: n - 1 for k, n in self.flashes.items() if n > 1}
        self.changed()

    def names(self) -> list[str]:
        """Drive names shown, including a flashed drive the snapshot does not list (yet)."""
        names = [str(d.get("name", "?")) for d in self.drives]
        return names + [n for n in self.flashes if n not in names]

    def row(self, drive: dict, name_w: int, width: int) -> Text:
        name = str(drive.get("name", "?"))
        value = float(drive.get("value", 0.0))
        low, high = float(drive.get("low", 0.0)), float(drive.get("high", 1.0))
        urgency = float(drive.get("urgency", 0.0))
        flashing = name in self.flashes
        text = Text()
        text.append(("↯" if flashing else " ") + name[:name_w].ljust(name_w), FLASH if flashing else Style())
        text.append(" ")
        track_w = max(6, width - name_w - 14)
        text.append_text(band_track(value, low, high, track_w))
        text.append(" " + short(value).rjust(5), Style(bold=True))
        text.append(f" u{urgency:4.2f}", Style(color=OUT_BAND, bold=True) if urgency > 0 else Style(dim=True))
        return text

    def lines(self, width: int) -> list[list[Segment]]:
        return [seg for row in self.rows(width) for seg in self.text_lines(row, width)]

    def render(self) -> Group:
        """The same content through Rich (used by tests and exports; the screen uses ``lines``)."""
        return Group(*self.rows(self.size.width))

    def rows(self, width: int) -> list[Text]:
        names = self.names()
        if not names:
            return [Text("no drives yet", Style(dim=True))]
        name_w = min(max(len(n) for n in names), max(6, width - 22))   # keep >= 8 cells of track
        by_name = {str(d.get("name", "?")): d for d in self.drives}
        return [self.row(by_name.get(n, {"name": n}), name_w, width) for n in names]

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return max(1, len(self.names()))
