"""Check a finished run's BASE / MASE selections against an independent float64 recomputation.

In a workspace that holds a run's artifacts (after ``dvc repro``, or ``dvc exp apply <exp>``),
every round's ``runs/<round>/queried.parquet`` is recomputed from the files alone and compared:

- "float64": logits from the float16 features and the saved head in float64, then BASE (paper
  Alg. 2, in the order ``select.base.order`` names) or MASE (Eq. 2) over the whole pool with
  plain numpy;
- "float64 on float32 logits": the same float64 distances and turns on a float32 logits product
  (the pipeline's arithmetic for the logits), which isolates the float32 product's part.

Independent of the pipeline's code: it reads ``params.yaml``, ``data/prepare/pool.parquet``,
``data/embed/features.npy`` (or the round's fine-tuned ``model/features.npy``) and the round's
Parquet/npz files directly, with polars and numpy, and imports nothing from ``al_core`` or
``stages`` (only the machine description of ``benchmarks/``). Also reports the logits' absolute error (float32 against float64) and, per round, the
smallest relative gap between an item a class took and the next one it would have taken (how
close the float64 selection is to a tie). Writes JSON with the machine to ``--out``.

Memory O(N*C) float64 and time O(N*d*C + C*N log N) for the whole pool: meant for pools like
the default (55,000 x 1280 features, 10 classes), not ImageNet.

    python -m checks.numerics --out benchmarks/results/numerics_base_seed0.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import polars as pl
import yaml

from al_core.samplers import SAMPLERS
from pipeline.results_file import machine

CHECKED_SAMPLERS = ("base", "mase")


class MissingArtifact(SystemExit):
    pass


def read_table(path: Path) -> pl.DataFrame:
    if not path.is_file():
        raise MissingArtifact(f"error: {path} does not exist; run the pipeline (dvc repro) first")
    return pl.read_parquet(path)


def boundary_distances_float64(logits: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``(N, C) float64``: column c is the item's distance to class c's boundary as BASE reads
    it: |z_p - z_c| / ||w_p - w_c|| for c != p (p the predicted class), the MASE margin at c = p."""
    rows = np.arange(logits.shape[0])
    predicted = np.argmax(logits, axis=1)
    weight_distances = np.sqrt(((weight[:, None, :] - weight[None, :, :]) ** 2).sum(axis=-1))
    np.fill_diagonal(weight_distances, np.inf)
    distances = np.abs(logits[rows, predicted][:, None] - logits) / weight_distances[predicted]
    distances[rows, predicted] = np.inf
    distances[rows, predicted] = distances.min(axis=1)
    return distances


def round_seed(seed: int, round_name: str) -> int:
    """The per-round seed the samplers' documentation gives: SeedSequence([seed, *map(ord, round)]).generate_state(1)[0]."""
    return int(np.random.SeedSequence([seed] + [ord(char) for char in round_name]).generate_state(1)[0])


def quotas_of(budget: int, labeled_counts: np.ndarray, seed: int) -> np.ndarray:
    """b // C each; b mod C more for the classes with the fewest labels, ties in the order of
    ``default_rng(seed).permutation(C)`` (the documented rule)."""
    num_classes = labeled_counts.shape[0]
    quotas = np.full(num_classes, budget // num_classes)
    tie_break = np.random.default_rng(seed).permutation(num_classes)
    ranked = sorted(range(num_classes), key=lambda c: (labeled_counts[c], tie_break[c]))
    quotas[ranked[: budget % num_classes]] += 1
    return quotas


def reference_selection(sampler: str, distances: np.ndarray, labeled_mask: np.ndarray, budget: int,
                        order: str = "round_robin", labeled_counts: np.ndarray | None = None,
                        seed: int = 0) -> tuple[np.ndarray, float]:
    """Pool positions picked, in order, and the smallest relative gap between a taken item and
    the next one its class would take (MASE: at the budget's cutoff)."""
    num_classes = distances.shape[1]
    positions = np.arange(distances.shape[0])
    if sampler == "mase":
        # The predicted class's column holds the minimum over the others: the MASE margin.
        margins = np.where(labeled_mask, np.inf, distances.min(axis=1))
        ranked = np.lexsort((positions, margins))
        gap = _relative_gap(margins[ranked[budget - 1]], margins[ranked[budget]]) if budget < ranked.shape[0] else np.inf
        return ranked[:budget], gap
    counts = np.zeros(num_classes, dtype=np.int64) if labeled_counts is None else labeled_counts
    quotas = quotas_of(budget, counts, seed)
    if order == "sequential":
        turns = [c for c in range(num_classes) for _ in range(quotas[c])]
    else:
        turns = [c for k in range(int(quotas.max())) for c in range(num_classes) if quotas[c] > k]
    # Each class's unlabeled items from nearest to farthest (ties by position); a turn takes the
    # first one not taken yet.
    ranked = []
    for c in range(num_classes):
        nearest_first = np.lexsort((positions, distances[:, c]))
        ranked.append(nearest_first[~labeled_mask[nearest_first]])
    taken = np.zeros(distances.shape[0], dtype=bool)
    cursor = [0] * num_classes
    picked, gaps = [], []
    for c in turns:
        while taken[ranked[c][cursor[c]]]:
            cursor[c] += 1
        item = ranked[c][cursor[c]]
        taken[item] = True
        picked.append(int(item))
        following = cursor[c] + 1
        while following < ranked[c].shape[0] and taken[ranked[c][following]]:
            following += 1
        if following < ranked[c].shape[0]:
            gaps.append(_relative_gap(distances[item, c], distances[ranked[c][following], c]))
    return np.asarray(picked, dtype=np.int64), (min(gaps) if gaps else np.inf)


def _relative_gap(last_taken: float, next_one: float) -> float:
    return float((next_one - last_taken) / max(abs(last_taken), 1e-300))


def check_round(params: dict, table: pl.DataFrame, num_classes: int, round_name: str) -> dict | None:
    round_dir = Path("runs") / round_name
    queried = read_table(round_dir / "queried.parquet")
    sampler = queried["sampler"][0] if queried.height else None
    if sampler not in CHECKED_SAMPLERS:
        return None
    pool_rows = np.flatnonzero(table["split"].to_numpy() == "pool")
    pool_ids = table["id"].to_numpy()[pool_rows]
    labeled = read_table(round_dir / "labeled.parquet")
    labeled_mask = np.isin(pool_ids, labeled["id"].to_numpy())
    labels = labeled["label"].to_numpy()
    labeled_counts = np.bincount(labels[labels >= 0], minlength=num_classes)
    head_file = round_dir / "head.npz"
    if not head_file.is_file():
        raise MissingArtifact(f"error: {head_file} does not exist; run the pipeline (dvc repro) first")
    with np.load(head_file) as head:
        weight32, bias32 = head["weight"].astype(np.float32), head["bias"].astype(np.float32)
    own = round_dir / "model" / "features.npy"
    features = np.load(own if own.is_file() else Path("data/embed/features.npy"), mmap_mode="r")[pool_rows]
    weight64 = weight32.astype(np.float64)
    logits64 = np.asarray(features, dtype=np.float64) @ weight64.T + bias32.astype(np.float64)
    logits32 = (np.asarray(features, dtype=np.float32) @ weight32.T + bias32).astype(np.float64)
    count = min(int(params["budget"]), int((~labeled_mask).sum()))
    base_options = (params.get("select") or {}).get("base") or {}
    settings = {"order": base_options.get("order", SAMPLERS["base"].options["order"].default), "labeled_counts": labeled_counts,
                "seed": round_seed(int(params["seed"]), round_name)}
    exact, gap = reference_selection(sampler, boundary_distances_float64(logits64, weight64), labeled_mask, count, **settings)
    on_float32, _ = reference_selection(sampler, boundary_distances_float64(logits32, weight64), labeled_mask, count, **settings)
    picked = queried["id"].to_numpy()
    exact_ids, float32_ids = pool_ids[exact], pool_ids[on_float32]
    error = np.abs(logits32 - logits64)
    return {
        "round": round_name,
        "sampler": sampler,
        "base_order": settings["order"] if sampler == "base" else None,
        "picks": int(picked.shape[0]),
        "float64": {
            "same_items": bool(set(exact_ids.tolist()) == set(picked.tolist())),
            "same_order": bool(np.array_equal(exact_ids, picked)),
            "picks_differing": int(len(set(picked.tolist()) - set(exact_ids.tolist()))),
            "smallest_relative_gap_at_a_cutoff": gap,
        },
        "float64_on_float32_logits": {"same_order": bool(np.array_equal(float32_ids, picked))},
        "logits_abs_error": {"median": float(np.median(error)), "max": float(error.max())},
        "logits_abs_median": float(np.median(np.abs(logits64))),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/numerics.json"))
    args = parser.parse_args(argv)

    if not Path("params.yaml").is_file():
        raise MissingArtifact("error: params.yaml not found; run from the project root (where dvc.yaml is)")
    params = yaml.safe_load(Path("params.yaml").read_text())
    table = read_table(Path("data/prepare/pool.parquet"))
    num_classes = int(json.loads(Path("data/prepare/meta.json").read_text())["num_classes"])
    rounds = []
    for round_name in params["schedule"]:
        found = check_round(params, table, num_classes, round_name)
        if found is None:
            print(f"{round_name}: sampler is not one of {CHECKED_SAMPLERS}; skipped")
            continue
        rounds.append(found)
        print(f"{round_name}: float64 same items {found['float64']['same_items']}, same order {found['float64']['same_order']} "
              f"({found['float64']['picks_differing']} picks differ); float64 distances on float32 logits same order "
              f"{found['float64_on_float32_logits']['same_order']}; smallest relative gap at a cutoff "
              f"{found['float64']['smallest_relative_gap_at_a_cutoff']:.2e}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "what": "each round's queried.parquet against an independent float64 whole-pool selection",
        "seed": params["seed"],
        "machine": machine(),
        "rounds": rounds,
    }, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
