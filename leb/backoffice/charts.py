"""Bar charts drawn as SVG on the server: the geometry is computed here, the
template only places it. Every bar is a link to the list behind it, and the
same numbers go into a table beside the chart, so nothing needs JavaScript."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

WIDTH = 640
HEIGHT = 230
LEFT = 104  # room for the value labels (money in ISO form is wide)
RIGHT = 8
TOP = 10
BOTTOM = 30
TICKS = 4
SERIES_LIMIT = 4  # the stylesheet has four bar colours


def _n(value: float) -> str:
    """A coordinate as SVG wants it, whatever the active locale."""
    return f"{value:.1f}"


@dataclass(frozen=True)
class Bar:
    x: str
    y: str
    width: str
    height: str
    series: int
    label: str
    url: str


@dataclass(frozen=True)
class Tick:
    y: str
    label: str


@dataclass(frozen=True)
class XLabel:
    x: str
    text: str


@dataclass(frozen=True)
class Chart:
    series: list[str]
    bars: list[Bar]
    ticks: list[Tick]
    xlabels: list[XLabel]
    width: int = WIDTH
    height: int = HEIGHT
    left: str = _n(LEFT)
    right: str = _n(WIDTH - RIGHT)
    baseline: str = _n(HEIGHT - BOTTOM)
    label_y: str = _n(HEIGHT - BOTTOM + 16)
    empty: bool = False
    legend: list[tuple[int, str]] = field(default_factory=list)


def nice_step(top: int, ticks: int = TICKS) -> int:
    """A round step (1, 2 or 5 times a power of ten) so that `ticks` steps reach `top`."""
    if top <= ticks:
        return 1
    raw = top / ticks
    power = 10 ** math.floor(math.log10(raw))
    for multiple in (1, 2, 5, 10):
        if multiple * power >= raw:
            return int(multiple * power)
    return int(10 * power)  # pragma: no cover - the loop always returns


def bar_chart(
    categories: Sequence[str],
    series: Sequence[str],
    values: Sequence[Sequence[int]],
    urls: Sequence[Sequence[str]],
    *,
    value_text: Callable[[int], str] = str,
    label_every: int = 1,
) -> Chart:
    """Grouped bars: `values[i][j]` is category i of series j, `urls[i][j]` the
    list behind that bar. `value_text` writes a value (money, a count)."""
    if len(series) > SERIES_LIMIT:
        raise ValueError(f"at most {SERIES_LIMIT} series")
    top = max((v for row in values for v in row), default=0)
    step = nice_step(top)
    scale_top = step * max(1, math.ceil(top / step)) if top else step * TICKS
    plot_height = HEIGHT - TOP - BOTTOM
    plot_width = WIDTH - LEFT - RIGHT
    slot = plot_width / max(1, len(categories))
    gap = slot * 0.2
    bar_width = (slot - gap) / max(1, len(series))
    bars: list[Bar] = []
    xlabels: list[XLabel] = []
    for i, category in enumerate(categories):
        start = LEFT + i * slot + gap / 2
        for j, name in enumerate(series):
            value = values[i][j]
            height = plot_height * value / scale_top
            bars.append(
                Bar(
                    x=_n(start + j * bar_width),
                    y=_n(TOP + plot_height - height),
                    width=_n(max(bar_width - 1, 1)),
                    # A zero keeps a hairline, so its link can still be seen and hovered.
                    height=_n(max(height, 1)),
                    series=j,
                    label=f"{category} · {name}: {value_text(value)}"
                    if len(series) > 1
                    else f"{category}: {value_text(value)}",
                    url=urls[i][j],
                )
            )
        if i % label_every == 0 or i == len(categories) - 1:
            xlabels.append(XLabel(x=_n(LEFT + i * slot + slot / 2), text=category))
    ticks = [
        Tick(
            y=_n(TOP + plot_height - plot_height * k * step / scale_top), label=value_text(k * step)
        )
        for k in range(0, int(scale_top / step) + 1)
    ]
    return Chart(
        series=list(series),
        bars=bars,
        ticks=ticks,
        xlabels=xlabels,
        empty=top == 0,
        legend=list(enumerate(series)) if len(series) > 1 else [],
    )
