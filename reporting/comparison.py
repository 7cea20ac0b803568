"""Statistics across experiments: per-group bands over seeds, class histograms, labels needed.

Experiments are grouped by sampler plus every other param that differs between them (seed
and schedule aside); seeds of a group give the mean and its 95% t-interval per round.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import polars as pl

from al_core.curves import labels_to_reach, mean_confidence_band, sorted_class_counts
from al_core.errors import InputError
from al_core.samplers import SAMPLERS
from reporting.experiments import Experiment

REACH_FRACTIONS = (0.90, 0.95, 0.99, 1.00)
BASELINES_FIRST = ("random", "balanced_random")  # then the other samplers by name
HISTOGRAM_ROUNDS = 4
# Where each metric can lie: the symmetric t-interval is clipped to it for display.
METRIC_BOUNDS = {"top1": (0.0, 1.0), "top5": (0.0, 1.0), "entropy": (0.0, 1.0), "imbalance_ratio": (1.0, np.inf)}


ABSENT = "(absent)"  # a key a run's params.yaml does not have


def varying_keys(experiments: list[Experiment]) -> list[str]:
    """Params (over the union of every run's keys, a missing key counting as its own value) that
    differ between runs, plus ``code`` when runs of several code versions are compared."""
    keys = sorted(set().union(*(experiment.params for experiment in experiments)))
    values = lambda key: {json.dumps(e.params.get(key, ABSENT), default=str) for e in experiments}  # noqa: E731
    varying = [key for key in keys if len(values(key)) > 1]
    if len({experiment.code for experiment in experiments}) > 1:
        varying.append("code")
    return varying


def group_name(experiment: Experiment, varying: list[str]) -> str:
    """The sampler, plus every other param that differs between experiments (seed and schedule
    aside), and the code version when it differs."""
    values = experiment.params | {"code": experiment.code}
    extra = [f"{key}={values.get(key, ABSENT)}" for key in varying
             if key not in ("sampler", "seed") and not key.startswith("schedule.")]
    return ", ".join([str(experiment.params.get("sampler"))] + extra)


@dataclass(frozen=True)
class Comparison:
    """Tidy per-round results of several experiments, grouped by sampler (and varied params)."""

    rounds: pl.DataFrame  # experiment, group, seed, round_index, round, labels, metrics..., counts
    full: pl.DataFrame  # group, top1, top5 (mean over the group's experiments)
    groups: list[str]

    @classmethod
    def of(cls, experiments: list[Experiment]) -> "Comparison":
        if not experiments:
            raise InputError("no finished experiments found: run `dvc repro` or `dvc exp run -S sampler=...` first")
        varying = varying_keys(experiments)
        frames, full_rows = [], []
        for experiment in experiments:
            group = group_name(experiment, varying)
            rounds = experiment.rounds.with_row_index("round_index").with_columns(
                pl.lit(experiment.name).alias("experiment"),
                pl.lit(group).alias("group"),
                pl.lit(str(experiment.seed)).alias("seed"),
                pl.col("round_index").cast(pl.Int64),
                pl.col("class_counts").cast(pl.String).str.split(" ").cast(pl.List(pl.Int64)).alias("counts"),
            )
            frames.append(rounds.select("experiment", "group", "seed", "round_index", "round", "labels", "top1", "top5",
                                        "imbalance_ratio", "entropy", "counts"))
            if experiment.full is not None:
                full_rows.append({"group": group, "top1": experiment.full.get("top1"), "top5": experiment.full.get("top5")})
        rounds = pl.concat(frames)
        names = list(BASELINES_FIRST) + [name for name in sorted(SAMPLERS) if name not in BASELINES_FIRST]
        order = {name: index for index, name in enumerate(names)}
        groups = sorted(rounds["group"].unique().to_list(), key=lambda g: (order.get(g.split(",")[0], len(order)), g))
        full = (pl.DataFrame(full_rows, schema={"group": pl.String, "top1": pl.Float64, "top5": pl.Float64})
                .group_by("group").agg(pl.col("top1").mean(), pl.col("top5").mean()).sort("group"))
        return cls(rounds=rounds, full=full, groups=groups)

    def bands(self, metric: str, x: str) -> pl.DataFrame:
        """Per group and ``x``: mean over seeds of ``metric`` and its 95% t-interval (clipped to
        the metric's range: accuracies and entropy in [0, 1], imbalance ratio >= 1)."""
        rows = []
        keep = ["round"] if x == "round_index" else []
        lowest, highest = METRIC_BOUNDS.get(metric, (-np.inf, np.inf))
        for key, part in self.rounds.group_by(["group", x] + keep, maintain_order=True):
            mean, low, high = mean_confidence_band(part[metric].to_numpy())
            low, high = max(low, lowest), min(high, highest)
            rows.append(dict(zip(["group", x] + keep, key)) | {"mean": mean, "low": low, "high": high, "seeds": part.height})
        return pl.DataFrame(rows).sort("group", x)

    def histograms(self, max_rounds: int = HISTOGRAM_ROUNDS) -> pl.DataFrame:
        """Sorted class counts for up to ``max_rounds`` rounds, evenly spaced, first and last included."""
        indices = sorted(self.rounds["round_index"].unique().to_list())
        picks = sorted({indices[int(i)] for i in np.round(np.linspace(0, len(indices) - 1, min(max_rounds, len(indices))))})
        rows = []
        for (group, round_index), part in self.rounds.filter(pl.col("round_index").is_in(picks)).group_by(["group", "round_index"]):
            counts = np.stack([np.asarray(c) for c in part["counts"].to_list()])
            rows.append({"group": group, "round_index": round_index, "round": part["round"][0],
                         "labels": int(part["labels"].mean()), "counts": sorted_class_counts(counts).tolist()})
        return pl.DataFrame(rows).sort("group", "round_index")

    def labels_needed(self) -> pl.DataFrame:
        """Labels each group needs for its mean top-1 to reach a fraction of the full-data top-1 (Table 3)."""
        top1 = self.bands("top1", "labels")
        rows = []
        for group in self.groups:
            curve = top1.filter(pl.col("group") == group).sort("labels")
            full = self.full.filter(pl.col("group") == group)
            best = curve.row(int(np.argmax(curve["mean"].to_numpy())), named=True)
            row = {"sampler": group, "seeds": int(curve["seeds"].max()),
                   "best top-1": f"{best['mean']:.4f} @ {best['labels']}"}
            full_top1 = full["top1"][0] if full.height else None
            row["full-data top-1"] = "-" if full_top1 is None else f"{full_top1:.4f}"
            for fraction in REACH_FRACTIONS:
                reached = None if full_top1 is None else labels_to_reach(curve["labels"].to_numpy(), curve["mean"].to_numpy(), fraction * full_top1)
                row[f"{fraction:.0%} of full"] = "-" if full_top1 is None else (str(reached) if reached else f"> {curve['labels'].max()}")
            rows.append(row)
        return pl.DataFrame(rows)

    def experiments_table(self) -> pl.DataFrame:
        finals = self.rounds.group_by("experiment", maintain_order=True).agg(
            pl.col("group").first().alias("sampler"), pl.col("seed").first(), pl.col("labels").last().alias("final labels"),
            pl.col("top1").last().alias("final top-1"), pl.col("top5").last().alias("final top-5"),
            pl.col("top1").mean().alias("mean top-1"), pl.col("imbalance_ratio").last().alias("final imbalance"),
            pl.col("entropy").last().alias("final entropy"),
        )
        return finals.sort("sampler", "seed")
