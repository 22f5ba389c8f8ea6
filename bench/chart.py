"""Draw the chart of docs/benchmarks.md: each ratio as a bar against its target."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from report import Result


def _number(ratio: float) -> str:
    """Return a ratio as its bar's label: two decimals, whole past 100, ∞ when infinite."""
    if math.isinf(ratio):
        return "∞"
    return f"{ratio:.2f}" if ratio < 100 else f"{ratio:,.0f}"


def draw(results: Sequence[Result], path: Path) -> None:
    """Draw each ratio as a bar against its target, and save the PNG at ``path``.

    When a ratio or a target is far from 1 (B5's p99 may grow a hundredfold, its target is 5),
    the axis is logarithmic, so the bars near 1 stay readable beside it. A goal beyond the
    target is a dotted line; an infinite ratio (a worker that did nothing) reaches the top.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [r for r in results if not r.skipped]
    values = [r.ratio for r in shown if math.isfinite(r.ratio)] + [r.low for r in shown if r.low]
    values += [r.high for r in shown if r.high is not None]
    values += [r.goal for r in shown if r.goal is not None]
    logarithmic = max(values, default=1.0) > 3
    figure, axes = plt.subplots(figsize=(max(7.5, 0.9 * len(shown) + 2), 3.8), dpi=110)
    if logarithmic:
        axes.set_yscale("log")
        bottom = min(0.1, min(values) / 2)
        axes.set_ylim(bottom, max(values) * 2)
    else:
        bottom = 0.0
        axes.set_ylim(0, max(1.15, *(value * 1.1 for value in values)))
    xs = list(range(len(shown)))
    # Grey for a measurement shown against a budget that is no target any more.
    colours = ["#3a8d3a" if r.met else "#c0392b" if r.judged else "#8c8c8c" for r in shown]
    top = axes.get_ylim()[1]
    heights = [min(r.ratio, top) - bottom for r in shown]
    bars = axes.bar(xs, heights, bottom=bottom, width=0.55, color=colours)
    for x, r, height, bar in zip(xs, shown, heights, bars, strict=True):
        left, right = x - 0.38, x + 0.38
        if r.high is None:
            lines, label, at = [r.low], f"≥ {r.low:.2f}", r.low
        elif not r.low:
            lines, label, at = [r.high], f"≤ {r.high:.2f}", r.high
        else:
            lines, label, at = [r.low, r.high], f"{r.low:.2f}–{r.high:.2f}", r.high
        marks = [(lines, label, at, "black", "--")]
        if r.goal is not None:
            marks.append(([r.goal], f"goal {r.goal:.2f}", r.goal, "grey", ":"))
        for ys, text, y, colour, style in marks:
            axes.hlines(ys, left, right, colors=colour, linestyles=style, lw=1.5, zorder=3)
            axes.annotate(
                text,
                (right, y),
                xytext=(0, 3),
                textcoords="offset points",
                fontsize=7,
                ha="right",
                color=colour,
            )
        # The middle of the bar as the eye sees it: geometric on a logarithmic axis.
        middle = (bottom * (bottom + height)) ** 0.5 if logarithmic else height / 2
        axes.annotate(
            _number(r.ratio),
            (bar.get_x() + bar.get_width() / 2, middle),
            ha="center",
            color="white",
            fontweight="bold",
            fontsize=8,
        )
    ticks = [f"{r.id}\n{r.target}" + ("" if r.judged else ", not judged") for r in shown]
    axes.set_xticks(xs, ticks, fontsize=8)
    axes.set_ylabel("yupnope ÷ baseline" + (" (log scale)" if logarithmic else ""))
    axes.set_title("yupnope against its baselines, measured side by side")
    axes.spines[["top", "right"]].set_visible(False)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
