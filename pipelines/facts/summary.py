"""Per-language statistics of fact frequencies, the paper's log bins, and a summary plot.

The frequency of a fact is ``cooccurrence_docs`` (documents mentioning both subject and object,
see :mod:`pipelines.core.phrases`). Input everywhere: a frame with at least ``lang`` and
``cooccurrence_docs`` (the ``counts`` table of :func:`pipelines.facts.pipeline.read_candidate`).

* :func:`language_summary`: per language, facts, median / mean / max frequency, zero-count facts.
* :func:`frequency_bins`: facts per language in 30 log-spaced bins from 1 to max+1, as in the
  paper (``numpy.logspace(0, log10(max + 1), 31)`` edges over the maximum of all languages, so
  every language shares the bins; zero counts in a bin of their own, ``"0"``).
* :func:`plot_summary`: a PNG with one histogram line per language over the log bins and a panel
  of per-language medians (matplotlib's Agg canvas: no display, no global pyplot state).

Languages come in KLAR's order (en fr es ar zh ru ja tr uk ca ko el), others sorted after them.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable

import numpy as np
import polars as pl

from pipelines.core.fileio import atomic_path
from schemas.facts import LANGUAGES

__all__ = ["language_order", "language_summary", "frequency_bins", "bin_edges", "plot_summary", "ZERO_BIN"]

N_BINS = 30
ZERO_BIN = "0"
FREQUENCY = "cooccurrence_docs"


def language_order(langs: Iterable[str]) -> list[str]:
    """The distinct languages of ``langs``: KLAR's order first, others sorted after."""
    present = set(langs)
    known = [lang for lang in LANGUAGES if lang in present]
    return known + sorted(present - set(known))


def _need(counts: pl.DataFrame, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in counts.columns]
    if missing:
        raise ValueError(f"counts frame lacks columns {missing}; it has {counts.columns}")


def language_summary(counts: pl.DataFrame) -> pl.DataFrame:
    """One row per language: ``lang``, ``facts``, ``median``, ``mean`` and ``max`` of
    ``cooccurrence_docs``, ``zero_facts`` (facts never seen with both phrases) and ``zero_share``
    (their share of the language's facts). An empty frame gives no rows."""
    _need(counts, ("lang", FREQUENCY))
    freq = pl.col(FREQUENCY)
    stats = counts.group_by("lang").agg(
        pl.len().cast(pl.Int64).alias("facts"),
        freq.median().cast(pl.Float64).alias("median"),
        freq.mean().cast(pl.Float64).alias("mean"),
        freq.max().cast(pl.Int64).alias("max"),
        (freq == 0).sum().cast(pl.Int64).alias("zero_facts"),
    )
    order = pl.DataFrame({"lang": language_order(stats.get_column("lang"))}, schema={"lang": pl.String})
    return (
        order.join(stats, on="lang", how="left", maintain_order="left")
        .with_columns((pl.col("zero_facts") / pl.col("facts")).alias("zero_share"))
        .select("lang", "facts", "median", "zero_facts", "zero_share", "max", "mean")
    )


def bin_edges(max_frequency: int, n_bins: int = N_BINS) -> np.ndarray:
    """The paper's ``n_bins + 1`` log-spaced edges from 1 to ``max_frequency + 1``."""
    return np.logspace(0, math.log10(max_frequency + 1), n_bins + 1)


def _label(lower: float, upper: float) -> str:
    return f"[{lower:.4g}, {upper:.4g})"


def frequency_bins(counts: pl.DataFrame, n_bins: int = N_BINS) -> pl.DataFrame:
    """Facts per language and bin: ``lang``, ``bin`` (0 for the zero bin, 1..n_bins for the log
    bins), ``label`` (``"0"`` or ``"[lower, upper)"``), ``lower``, ``upper`` (the zero bin: 0, 1)
    and ``facts``. Every language has all ``n_bins + 1`` rows (empty bins count 0).

    Bin ``k`` (1-based) holds the frequencies in ``[edge[k-1], edge[k])``; the edges are
    :func:`bin_edges` of the largest frequency of any language, so the largest lands in the last
    bin. Raises ``ValueError`` for ``n_bins < 1`` or a negative frequency.
    """
    _need(counts, ("lang", FREQUENCY))
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    freq = counts.get_column(FREQUENCY).fill_null(0).to_numpy()
    if freq.size and freq.min() < 0:
        raise ValueError(f"{FREQUENCY} has negative values (min {int(freq.min())}): validate the counts first")
    peak = int(freq.max()) if freq.size else 0
    edges = bin_edges(peak, n_bins)
    # 1 <= f <= max < max + 1: searchsorted over the inner edges gives the 0-based log bin
    log_bin = np.searchsorted(edges[1:-1], freq, side="right") + 1
    assigned = pl.DataFrame({"lang": counts.get_column("lang"), "bin": np.where(freq == 0, 0, log_bin)})
    tally = assigned.group_by("lang", "bin").agg(pl.len().cast(pl.Int64).alias("facts"))
    bins = pl.DataFrame(
        {
            "bin": list(range(n_bins + 1)),
            "label": [ZERO_BIN] + [_label(edges[k], edges[k + 1]) for k in range(n_bins)],
            "lower": [0.0, *edges[:-1].tolist()],
            "upper": [1.0, *edges[1:].tolist()],
        },
        schema={"bin": pl.Int64, "label": pl.String, "lower": pl.Float64, "upper": pl.Float64},
    )
    langs = pl.DataFrame({"lang": language_order(counts.get_column("lang"))}, schema={"lang": pl.String})
    return (
        langs.join(bins, how="cross")
        .join(tally, on=["lang", "bin"], how="left", maintain_order="left")
        .with_columns(pl.col("facts").fill_null(0))
    )


def _styles(n: int) -> list[tuple[tuple[float, ...], str]]:
    """(colour, line style) per language: tab10's colours, then again dashed, then dotted."""
    from matplotlib import colormaps

    colours = colormaps["tab10"].colors
    styles = ("-", "--", ":", "-.")
    return [(colours[i % len(colours)], styles[(i // len(colours)) % len(styles)]) for i in range(n)]


def plot_summary(counts: pl.DataFrame, path: Path | str, *, corpus_name: str | None = None, n_bins: int = N_BINS) -> Path:
    """Write a PNG to ``path`` (atomically): left, facts per log bin, one line per language (the
    zero bin's count in the legend); right, the median frequency per language. Returns ``path``."""
    # Imported here: matplotlib takes seconds to import and only this function needs it.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    bins = frequency_bins(counts, n_bins)
    summary = language_summary(counts)
    langs = summary.get_column("lang").to_list()
    styles = _styles(len(langs))

    figure = Figure(figsize=(15, 6), layout="constrained")
    FigureCanvasAgg(figure)
    lines_ax, median_ax = figure.subplots(1, 2, width_ratios=(2.6, 1))
    log_bins = bins.filter(pl.col("bin") > 0)
    for (colour, style), row in zip(styles, summary.iter_rows(named=True)):
        mine = log_bins.filter(pl.col("lang") == row["lang"])
        centres = np.sqrt(mine.get_column("lower").to_numpy() * mine.get_column("upper").to_numpy())
        label = f"{row['lang']} (zero: {row['zero_facts']:,} of {row['facts']:,})"
        lines_ax.plot(centres, mine.get_column("facts").to_numpy(), style, color=colour, marker=".", linewidth=1.6, label=label)
    lines_ax.set_xscale("log")
    lines_ax.set_xlabel(f"documents with subject and object ({n_bins} log-spaced bins from 1; zero counts in the legend)")
    lines_ax.set_ylabel("facts")
    lines_ax.set_title("Facts per frequency bin")
    lines_ax.grid(True, which="major", alpha=0.3)

    medians = summary.get_column("median").fill_null(0.0).to_numpy()
    positions = np.arange(len(langs))
    # a colour that comes round again is hatched in the bars, as its line is dashed
    hatches = [None if style == "-" else "//" for _, style in styles]
    median_ax.bar(positions, medians, color=[c for c, _ in styles], hatch=hatches, edgecolor="white")
    median_ax.set_xticks(positions, langs)
    median_ax.set_yscale("symlog", linthresh=1)  # zero medians stay visible as zero
    median_ax.set_ylim(0, max(float(medians.max(initial=0.0)) * 4, 2.0))  # room for the value labels
    for x, value in zip(positions, medians):
        median_ax.annotate(f"{value:g}", (x, value), ha="center", va="bottom", fontsize=8,
                           xytext=(0, 2), textcoords="offset points")
    median_ax.set_ylabel("median documents with subject and object")
    median_ax.set_title("Median frequency per language")
    median_ax.grid(True, axis="y", alpha=0.3)

    title = "Fact frequencies per language"
    figure.suptitle(f"{title}: {corpus_name}" if corpus_name else title)
    figure.legend(loc="outside right upper", title="language", fontsize=9)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110)
    return path
