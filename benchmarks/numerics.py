"""How exact are a run's BASE / MASE selections? (a check on real artifacts, not a test)

In a workspace that holds a run's artifacts (after ``dvc repro``, or ``dvc exp apply <exp>``),
recompute every round's selection independently and compare it with
``runs/<round>/queried.parquet``:

- "float64": logits from the float16 features and the saved head in float64, then BASE (paper
  Alg. 2) or MASE (Eq. 2) over the whole pool with plain numpy, sharing no code with al_core;
- "float64 on float32 logits": the same float64 distances and greedy on a float32 logits
  product (the pipeline's arithmetic for the logits), which isolates the float32 product's part.

Also reports the logits' absolute error (float32 against float64) and, per round, the smallest
relative gap between the last item a class took and the next one (how close the float64
selection is to a tie). Writes JSON with the machine to ``--out``.

Memory O(N*C) float64 and time O(N*d*C) for the whole pool: meant for pools like the default
(55,000 x 1280 features, 10 classes), not ImageNet.

    python -m benchmarks.numerics --out benchmarks/results/numerics_base_seed0.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from benchmarks.results_file import machine, write_results
from stages.common import Params, PoolTable, labeled_mask, load_queried, round_features
from stages.rounds import load_head

CHECKED_SAMPLERS = ("base", "mase")


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


def smallest(scores: np.ndarray, count: int) -> np.ndarray:
    """Positions of the ``count`` smallest scores, ties by position."""
    return np.lexsort((np.arange(scores.shape[0]), scores))[:count]


def reference_selection(sampler: str, distances: np.ndarray, labeled_mask: np.ndarray, budget: int) -> tuple[np.ndarray, float]:
    """Pool positions picked, in order, and the smallest relative gap at a quota's cutoff."""
    num_classes = distances.shape[1]
    if sampler == "mase":
        # The predicted class's column holds the minimum over the others: the MASE margin.
        margins = np.where(labeled_mask, np.inf, distances.min(axis=1))
        order = smallest(margins, budget + 1)
        return order[:budget], _cutoff_gap(margins, order, budget)
    taken = labeled_mask.copy()
    picked, gaps = [], []
    for cls in range(num_classes):
        quota = budget // num_classes + (1 if cls < budget % num_classes else 0)
        if quota == 0:
            continue
        column = np.where(taken, np.inf, distances[:, cls])
        order = smallest(column, quota + 1)
        taken[order[:quota]] = True
        picked.extend(order[:quota].tolist())
        gaps.append(_cutoff_gap(column, order, quota))
    return np.asarray(picked, dtype=np.int64), min(gaps)


def _cutoff_gap(scores: np.ndarray, order: np.ndarray, count: int) -> float:
    """(next score - last taken score) / last taken score; inf when nothing is left after it."""
    if order.shape[0] <= count:
        return float("inf")
    last_taken, next_one = scores[order[count - 1]], scores[order[count]]
    return float((next_one - last_taken) / max(abs(last_taken), 1e-300))


def check_round(table: PoolTable, round_name: str, budget: int) -> dict | None:
    queried = load_queried(round_name)
    sampler = queried["sampler"][0] if queried.height else None
    if sampler not in CHECKED_SAMPLERS:
        return None
    pool_ids = table.ids("pool")
    labeled = labeled_mask(table, round_name)
    head = load_head(round_name)
    features = round_features(round_name)[table.split_range("pool")]
    weight32, bias32 = head["weight"].astype(np.float32), head["bias"].astype(np.float32)
    weight64 = weight32.astype(np.float64)
    logits64 = np.asarray(features, dtype=np.float64) @ weight64.T + bias32.astype(np.float64)
    logits32 = (np.asarray(features, dtype=np.float32) @ weight32.T + bias32).astype(np.float64)
    count = min(budget, int((~labeled).sum()))
    exact, gap = reference_selection(sampler, boundary_distances_float64(logits64, weight64), labeled, count)
    on_float32, _ = reference_selection(sampler, boundary_distances_float64(logits32, weight64), labeled, count)
    picked = queried["id"].to_numpy()
    exact_ids, float32_ids = pool_ids[exact], pool_ids[on_float32]
    error = np.abs(logits32 - logits64)
    return {
        "round": round_name,
        "sampler": sampler,
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/numerics.json"))
    args = parser.parse_args()

    params = Params()
    table = PoolTable.load()
    budget = params.get("budget", int)
    rounds = []
    for round_name in params.get("schedule", dict):
        found = check_round(table, round_name, budget)
        if found is None:
            print(f"{round_name}: sampler is not one of {CHECKED_SAMPLERS}; skipped")
            continue
        rounds.append(found)
        print(f"{round_name}: float64 same items {found['float64']['same_items']}, same order {found['float64']['same_order']} "
              f"({found['float64']['picks_differing']} picks differ); float64 distances on float32 logits same order "
              f"{found['float64_on_float32_logits']['same_order']}; smallest relative gap at a cutoff "
              f"{found['float64']['smallest_relative_gap_at_a_cutoff']:.2e}", flush=True)
    write_results(args.out, {
        "what": "each round's queried.parquet against an independent float64 whole-pool selection",
        "seed": params.get("seed", int),
        "machine": machine(),
        "rounds": rounds,
    })


if __name__ == "__main__":
    main()
