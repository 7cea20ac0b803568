"""How many rows filter-and-refine scores exactly on the default run's real features (a benchmark).

Reads the default run's artifacts (``bash run.sh`` first): the pool's EfficientNet-Lite0 features
of Fashion-MNIST, and the head and labeled set of the rounds given; runs each streaming sampler
with the float32 and the bfloat16 product and records the rows scored exactly (the picks are the
same for both: tests/samplers/test_refine.py).

    python -m benchmarks.refine_fractions                     # rounds r00 and r07, b = 100
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from al_core.samplers import select_with_scores
from pipeline.results_file import machine, write_results
from al_core.artifacts import read_npy
from pipeline.artifacts import PoolTable, labeled_mask, load_head, load_labeled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", default="r00,r07")
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--samplers", default="base,mase,margin,confidence,entropy")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/refine_fractions_default.json"))
    args = parser.parse_args()
    table = PoolTable.load()
    features = read_npy(Path("data/embed/features.npy"))[table.split_range("pool")]
    rows = []
    for round_name in args.rounds.split(","):
        head = load_head(round_name)
        mask = labeled_mask(table, round_name)
        labels = load_labeled(round_name)["label"].to_numpy()
        counts = np.bincount(labels[labels >= 0], minlength=table.num_classes)
        for name in args.samplers.split(","):
            picks = {}
            for precision in ("float32", "bfloat16"):
                started = time.perf_counter()
                selection = select_with_scores(name, args.budget, features=features, head_weight=head["weight"], head_bias=head["bias"],
                                               labeled_mask=mask, seed=0, labeled_class_counts=counts, precision=precision)
                picks[precision] = selection.indices.tolist()
                rows.append({"round": round_name, "sampler": name, "precision": precision, "seconds": round(time.perf_counter() - started, 2),
                             **selection.notes, "refined_fraction": round(selection.notes["refined_rows"] / selection.notes["streamed_rows"], 4)})
                print(rows[-1], flush=True)
            rows[-1]["same_picks_as_float32"] = picks["bfloat16"] == picks["float32"]
    write_results(args.out, {"machine": machine(), "pool": {"rows": int(features.shape[0]), "dim": int(features.shape[1]),
                                                            "classes": int(table.num_classes)}, "budget": args.budget, "runs": rows})


if __name__ == "__main__":
    main()
