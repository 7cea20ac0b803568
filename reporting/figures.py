"""Static figures of the report (matplotlib, Agg): PNG and SVG that open with no network.

Each function takes tidy polars frames built by ``reporting.comparison`` and writes ``<stem>.png`` and
``<stem>.svg``. Files are byte-stable for the same inputs and matplotlib version (no dates,
fixed SVG ids).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from al_core.artifacts import atomic_path  # noqa: E402

matplotlib.rcParams["svg.hashsalt"] = "al-imagenet"
FORMATS = ("png", "svg")
PALETTE = matplotlib.colormaps["tab10"].colors + matplotlib.colormaps["Dark2"].colors


def group_colors(groups: list[str]) -> dict[str, tuple]:
    return {group: PALETTE[index % len(PALETTE)] for index, group in enumerate(groups)}


def save(figure: Figure, directory: Path, stem: str) -> list[Path]:
    """Write ``directory/stem.{png,svg}`` atomically; returns the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in FORMATS:
        path = directory / f"{stem}.{fmt}"
        metadata = {"Date": None} if fmt == "svg" else {"Software": None}
        with atomic_path(path, suffix=f".{fmt}") as tmp:
            figure.savefig(tmp, format=fmt, dpi=110, metadata=metadata, bbox_inches="tight")
        written.append(path)
    return written


def _plot_bands(axis, bands: pl.DataFrame, x: str, colors: dict[str, tuple]) -> None:
    for group in colors:
        rows = bands.filter(pl.col("group") == group).sort(x)
        if rows.height == 0:
            continue
        seeds = int(rows["seeds"].max())
        label = group if seeds == 1 else f"{group} ({seeds} seeds)"
        axis.plot(rows[x], rows["mean"], marker="o", markersize=3, color=colors[group], label=label)
        if seeds > 1:  # light bands: with many groups they overlap, and the lines must stay readable
            axis.fill_between(rows[x], rows["low"], rows["high"], color=colors[group], alpha=0.12, linewidth=0)


def learning_curves(bands: dict[str, pl.DataFrame], full: pl.DataFrame, colors: dict[str, tuple], directory: Path) -> list[Path]:
    """Top-1 and top-5 test accuracy against labels used; dashed: the same head on every label.

    ``bands[metric]``: group, labels, mean, low, high, seeds. ``full``: group, top1, top5 (mean
    over the group's seeds of the full-data probe; may be empty).
    """
    figure = Figure(figsize=(11, 4.2))
    axes = figure.subplots(1, 2)
    for axis, metric, title in zip(axes, ("top1", "top5"), ("top-1", "top-5")):
        _plot_bands(axis, bands[metric], "labels", colors)
        for value, groups in _full_levels(full, metric):
            color = "black" if len(groups) == len(colors) else colors[groups[0]]
            axis.axhline(value, color=color, linestyle="--", linewidth=1,
                         label=f"all labels: {value:.3f}" + ("" if color == "black" else f" ({', '.join(groups)})"))
        axis.set_xlabel("labels used")
        axis.set_ylabel(f"test {title} accuracy")
        axis.set_title(f"{title} accuracy against labels")
        axis.grid(alpha=0.3)
    _legend_below(figure, axes)
    return save(figure, directory, "learning_curves")


def _legend_below(figure: Figure, axes) -> None:
    """One legend for both panels, under them, so it never hides a curve."""
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=min(4, max(1, len(labels))), fontsize=8,
                  title="mean over seeds; bands: 95% t-interval" if any("seeds)" in label for label in labels) else None,
                  title_fontsize=8)


def _full_levels(full: pl.DataFrame, metric: str) -> list[tuple[float, list[str]]]:
    """Distinct full-data accuracies and the groups that share each."""
    levels: dict[float, list[str]] = {}
    for group, value in full.select("group", metric).iter_rows():
        if value is not None:
            levels.setdefault(round(float(value), 6), []).append(group)
    return sorted(levels.items())


def balance(bands: dict[str, pl.DataFrame], colors: dict[str, tuple], directory: Path) -> list[Path]:
    """Imbalance ratio (max/min class count) and normalised label entropy of the labeled set per round."""
    figure = Figure(figsize=(11, 4.2))
    axes = figure.subplots(1, 2)
    for axis, metric, title in zip(axes, ("imbalance_ratio", "entropy"), ("class imbalance ratio", "normalised label entropy")):
        _plot_bands(axis, bands[metric], "round_index", colors)
        axis.set_xlabel("round (labeled set trained on)")
        axis.set_ylabel(title)
        axis.set_title(f"{title} per round")
        axis.grid(alpha=0.3)
        rounds = bands[metric].select("round_index", "round").unique().sort("round_index")
        axis.set_xticks(rounds["round_index"].to_list(), rounds["round"].to_list(), fontsize=8)
    _legend_below(figure, axes)
    return save(figure, directory, "balance")


def class_histograms(histograms: pl.DataFrame, colors: dict[str, tuple], directory: Path) -> list[Path]:
    """Grid rounds x groups of the labeled set's class counts, sorted from least to most labeled.

    ``histograms``: group, round_index, round, labels, counts (list, sorted ascending, mean over
    seeds of each seed's sorted counts).
    """
    rounds = histograms.select("round_index", "round").unique().sort("round_index")
    groups = [group for group in colors if group in set(histograms["group"].to_list())]
    figure = Figure(figsize=(2.8 * len(groups) + 0.8, 2.2 * rounds.height + 0.6))
    axes = np.atleast_2d(figure.subplots(rounds.height, len(groups), sharey="row", squeeze=False))
    for row, (round_index, round_name) in enumerate(rounds.iter_rows()):
        for column, group in enumerate(groups):
            axis = axes[row, column]
            cell = histograms.filter((pl.col("group") == group) & (pl.col("round_index") == round_index))
            if cell.height == 0:
                axis.set_axis_off()
                continue
            counts = np.asarray(cell["counts"][0], dtype=np.float64)
            axis.bar(np.arange(counts.size), counts, width=0.9 if counts.size <= 50 else 1.0, color=colors[group], linewidth=0)
            axis.set_title(f"{group}: {round_name}, {int(cell['labels'][0])} labels", fontsize=8)
            axis.set_xticks([])
            if column == 0:
                axis.set_ylabel("labels per class", fontsize=8)
            if row == rounds.height - 1:
                axis.set_xlabel("classes, least to most labeled", fontsize=8)
            axis.tick_params(labelsize=7)
    return save(figure, directory, "class_histograms")


STUDY_MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*", "h", "<", ">")  # with the colours, each of 11 samplers its own line


def study_figures(curves: pl.DataFrame, paired: pl.DataFrame, cells: pl.DataFrame, datasets: list[str], samplers: list[str],
                  directory: Path) -> list[Path]:
    """One column per dataset, three rows against labels: the mean top-1 (lines only: with 11
    samplers, overlapping bands would hide them), the paired top-1 difference to random with its
    95% t-band (0 dashed: where a band leaves it, the seeds support a difference), and the mean
    class imbalance ratio (log scale). One legend, below, of sampler names; each sampler has its
    own colour and marker, and the fonts are sized for the figure shown at a page's width.

    ``curves``: dataset, sampler, labels, mean, low, high. ``paired``: the same for top1 - random.
    ``cells``: dataset, sampler, seed, round_index, labels, imbalance_ratio.
    """
    colors = group_colors(samplers)
    present = [dataset for dataset in datasets if dataset in set(curves["dataset"].to_list())]
    figure = Figure(figsize=(6.5 * len(present), 13), layout="constrained")
    axes = np.atleast_2d(figure.subplots(3, len(present), squeeze=False))
    imbalance = (cells.group_by(["dataset", "sampler", "round_index"]).agg(pl.col("labels").mean(), pl.col("imbalance_ratio").mean())
                 .sort("dataset", "sampler", "round_index"))
    panels = ((curves, "mean test top-1 over seeds", "mean"),
              (paired, "top-1 minus random's, same seed (mean, 95% band)", "mean"),
              (imbalance, "class imbalance ratio, mean over seeds (log)", "imbalance_ratio"))
    for column, dataset in enumerate(present):
        for row, (frame, title, value) in enumerate(panels):
            axis = axes[row, column]
            for index, sampler in enumerate(samplers):
                part = frame.filter((pl.col("dataset") == dataset) & (pl.col("sampler") == sampler)).sort("labels")
                if part.height == 0:
                    continue
                axis.plot(part["labels"], part[value], marker=STUDY_MARKERS[index % len(STUDY_MARKERS)], markersize=4.5,
                          linewidth=1.6, color=colors[sampler], label=sampler)
                if row == 1 and int(part["n"].max()) > 1:
                    axis.fill_between(part["labels"], part["low"], part["high"], color=colors[sampler], alpha=0.10, linewidth=0)
            if row == 1:
                axis.axhline(0.0, color="black", linestyle="--", linewidth=0.8)
            if row == 2:
                axis.set_yscale("log")
                top = max(2.0, float(frame.filter(pl.col("dataset") == dataset)[value].max()))
                ticks = [tick for tick in (1, 1.5, 2, 3, 5, 10, 20, 50, 100, 200) if tick <= top * 1.2]
                axis.set_yticks(ticks, [f"{tick:g}" for tick in ticks])
                axis.minorticks_off()
            axis.set_title(f"{dataset}: {title}", fontsize=13)
            axis.set_xlabel("labels used", fontsize=12)
            axis.tick_params(labelsize=11)
            axis.grid(alpha=0.3)
    handles = {label: handle for axis in axes.flat for handle, label in zip(*axis.get_legend_handles_labels())}
    figure.legend(list(handles.values()), list(handles), loc="outside lower center", ncol=min(4, max(1, len(handles))), fontsize=12)
    return save(figure, directory, "study")
