"""How loose the float32 filter's error bound is, and what a product sliced along d would cost to
tighten it (a benchmark, not a test).

Every streaming sampler rules rows out with intervals built from ``Float32Filter.bound``:
gamma_d ||x|| max_c ||w_c|| plus the roundings of the bias and the reference, which holds for any
summation order the BLAS takes. On the first ``--rows`` rows of each benchmark pool
(``realistic``, ``imagenet``; d = 2048, C = 1000) this records:

- ``bound_over_error``: per row, the bound divided by the largest |float32 logit - exact logit| of
  that row (quantiles over the rows): how far the worst case lies above what the product did;
- ``product_seconds``: one block of ``--rows`` rows multiplied whole (numpy's BLAS, the filter's
  product) and sliced along d into m = ceil(d/K) pieces of K columns (K in ``--slices``), each
  piece's product made apart in float32 (torch) and the pieces added in order
  (`sliced_product`), the fastest of ``--repeats`` alternating runs each;
- ``bound_factor``: gamma_(K + m - 1) / gamma_d, the factor by which such a slicing shrinks the
  bound (each term passes through one multiplication and at most K - 1 additions inside its piece,
  and m - 1 across the pieces: Higham, Accuracy and Stability of Numerical Algorithms, Eq. 3.4
  applied to that tree).

Then ``selections``: what the tighter bound does in a whole selection, for the cells of
``--selections`` (pool:sampler:b/N, float32 stream): each selection runs with the filter as it is
and with its product and bound swapped for the sliced ones (`SlicedFloat32Filter`, width
``--selection-width``; measurement only, the library keeps the whole product), alternating,
``--selection-repeats`` times each; recorded are the fastest wall and process-CPU times, the rows
scored exactly and whether both gave the same picks, order and scores. BASE is refused there:
its later passes make a whole product of their own and judge it by the filter's bound.

    python -m benchmarks.float32_bound
"""

from __future__ import annotations

import argparse
import contextlib
import time
from functools import partial
from pathlib import Path

import numpy as np

from al_core import linear
from al_core.linear import accumulation_factor, as_float32, reference_logits
from al_core.samplers import select_with_scores
from benchmarks.realistic_pool import WORK, build_named_pool
from benchmarks.selection_grid import CHUNK, labeled_mask, pool_clusters, same_selection
from pipeline.results_file import write_results

OUT = Path("benchmarks/results/float32_bound.json")


def sliced_product(block: np.ndarray, weight: np.ndarray, bias: np.ndarray, width: int, columns=None) -> np.ndarray:
    """``block @ weight.T + bias`` in float32, sliced along d: each piece of ``width`` columns
    multiplied apart (torch, IEEE float32), the pieces' products added in order, then the bias. A
    product that accumulated into the running sum (``addmm_``) would leave to the BLAS where that
    sum enters each piece's additions, and so would not guarantee gamma_(K + m - 1). ``columns``:
    ``weight.T`` as a contiguous torch tensor, when the caller made it once for many blocks."""
    import torch

    rows = torch.from_numpy(linear._writable_float32(block))
    if columns is None:
        columns = torch.from_numpy(np.ascontiguousarray(weight.T, dtype=np.float32))
    with linear._full_precision_products(torch):  # IEEE float32, as the filter's torch product: the bound assumes it
        out = torch.mm(rows[:, :width], columns[:width])
        piece = torch.empty_like(out)
        for start in range(width, block.shape[1], width):
            torch.mm(rows[:, start:start + width], columns[start:start + width], out=piece)
            out += piece
    out += torch.from_numpy(np.asarray(bias, dtype=np.float32))
    return out.numpy()


def sliced_terms(d: int, width: int) -> int:
    """K + m - 1 with m = ceil(d / K): the roundings on any term's path through `sliced_product`
    (before the bias, which the filter's bound covers apart)."""
    return width + -(-d // width) - 1


class SlicedFloat32Filter(linear.Float32Filter):
    """Measurement only: the float32 filter with `sliced_product` and the bound it allows,
    gamma_(K + m - 1) ||x|| max ||w_c|| plus the filter's roundings of the bias and the reference
    (CPU only)."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray, device: str | None = None, width: int = 512):
        if device is not None:
            raise ValueError("SlicedFloat32Filter measures the CPU product only")
        import torch

        super().__init__(weight, bias)
        self.width = width
        self.factor = accumulation_factor(sliced_terms(self.weight.shape[1], width), linear.UNIT_ROUNDOFF_32) * linear.SAFETY
        self.columns = torch.from_numpy(np.ascontiguousarray(self.weight.T))  # once, not per block

    def product(self, block: np.ndarray) -> np.ndarray:
        return sliced_product(block, self.weight, self.bias, self.width, self.columns)


@contextlib.contextmanager
def sliced_filter(width: int):
    """Selections made inside stream and narrow with `SlicedFloat32Filter` instead of the float32 filter."""
    saved = linear.LOGIT_FILTERS["float32"]
    linear.LOGIT_FILTERS["float32"] = partial(SlicedFloat32Filter, width=width)
    try:
        yield
    finally:
        linear.LOGIT_FILTERS["float32"] = saved


SELECTION_CELLS = "imagenet:margin:0.1,imagenet:margin_clustering:0.01,realistic:margin:0.1,realistic:confidence:0.1,realistic:entropy:0.001"


def parse_cells(text: str) -> list[tuple[str, str, float]]:
    """``pool:sampler:fraction,...`` as tuples; BASE and unknown pools refused by name."""
    cells = []
    for item in filter(None, text.split(",")):
        parts = item.split(":")
        if len(parts) != 3 or parts[0] not in ("realistic", "imagenet") or not 0 < float(parts[2]) < 1:
            raise ValueError(f"--selections: {item!r} is not pool:sampler:fraction (pool realistic or imagenet, 0 < fraction < 1)")
        if parts[1].startswith("base"):
            raise ValueError(f"--selections: {item!r}: BASE's later passes judge a whole product of their own by the filter's bound")
        cells.append((parts[0], parts[1], float(parts[2])))
    return cells


def measure_selections(cells: list[tuple[str, str, float]], width: int, repeats: int, seed: int,
                       shape: tuple[int, int, int] = (100_000, 2048, 1000), workdir: Path = WORK) -> list[dict]:
    """Each cell's selection with the whole and the sliced float32 product, alternating (see the module)."""
    rows, clusters = [], {}
    for pool, sampler, fraction in cells:
        features, weight, bias, _ = build_named_pool(pool, workdir, *shape, seed)
        if sampler == "margin_clustering" and pool not in clusters:
            clusters[pool] = pool_clusters(features, seed)
        options = {"cluster_ids": clusters[pool]} if sampler == "margin_clustering" else {}
        budget = max(1, round(fraction * shape[0]))
        common = dict(labeled_mask=labeled_mask(shape[0], seed), seed=seed, options=options, head_weight=weight, head_bias=bias,
                      features=features, chunk_size=CHUNK, precision="float32")
        wall = {"whole": float("inf"), "sliced": float("inf")}
        cpu = dict(wall)
        made = {}
        for _ in range(repeats):
            for mode in ("whole", "sliced"):
                with sliced_filter(width) if mode == "sliced" else contextlib.nullcontext():
                    started, started_cpu = time.perf_counter(), time.process_time()
                    made[mode] = select_with_scores(sampler, budget, **common)
                    wall[mode] = min(wall[mode], time.perf_counter() - started)
                    cpu[mode] = min(cpu[mode], time.process_time() - started_cpu)
        row = {"pool": pool, "sampler": sampler, "budget_fraction": fraction, "budget": budget, "width": width,
               "seconds": {mode: round(value, 3) for mode, value in wall.items()},
               "process_seconds": {mode: round(value, 3) for mode, value in cpu.items()},
               "refined_rows": {mode: made[mode].notes.get("refined_rows") for mode in made},
               "partial_rows": {mode: made[mode].notes.get("partial_rows", 0) for mode in made},
               "same_picks_order_scores": same_selection(made["whole"], made["sliced"])}
        print(pool, sampler, fraction, {key: row[key] for key in ("seconds", "refined_rows", "same_picks_order_scores")})
        rows.append(row)
    return rows


def measure(pool: str, rows: int, slices: list[int], repeats: int, seed: int, shape: tuple[int, int, int] = (100_000, 2048, 1000),
            workdir: Path = WORK) -> dict:
    features, weight, bias, _ = build_named_pool(pool, workdir, *shape, seed)
    block = as_float32(features[:rows])
    fast = linear.Float32Filter(weight, bias)
    logits = fast.product(block)
    bound = fast.bound(block, logits)
    error = np.abs(logits.astype(np.float64) - reference_logits(block, weight, bias).astype(np.float64)).max(axis=1)
    ratio = bound / np.maximum(error, np.finfo(np.float64).tiny)
    methods = {"whole": lambda: fast.product(block), **{f"sliced_{k}": (lambda k=k: sliced_product(block, weight, bias, k)) for k in slices}}
    best = {name: float("inf") for name in methods}
    for method in methods.values():
        method()  # warm: torch's import, BLAS buffers
    for _ in range(repeats):
        for name, method in methods.items():
            started = time.perf_counter()
            method()
            best[name] = min(best[name], time.perf_counter() - started)
    d = block.shape[1]
    full = accumulation_factor(d, linear.UNIT_ROUNDOFF_32)
    result = {
        "pool": pool, "rows": rows, "d": d, "c": weight.shape[0], "seed": seed,
        "bound_median": float(np.median(bound)), "error_median": float(np.median(error)),
        "bound_over_error": {q: round(float(np.quantile(ratio, float(q))), 1) for q in ("0.01", "0.5", "0.99")},
        "product_seconds": {name: round(value, 4) for name, value in best.items()},
        "slowdown": {name: round(value / best["whole"], 3) for name, value in best.items() if name != "whole"},
        "bound_factor": {f"sliced_{k}": round(accumulation_factor(sliced_terms(d, k), linear.UNIT_ROUNDOFF_32) / full, 4) for k in slices},
    }
    print(pool, {key: result[key] for key in ("bound_over_error", "slowdown", "bound_factor")})
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=8192, help="rows of each pool (one of the samplers' blocks)")
    parser.add_argument("--slices", default="256,512,1024", help="widths K of the pieces of d, comma-separated")
    parser.add_argument("--pools", default="realistic,imagenet")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n", type=int, default=100_000, help="the pools' size (their first --rows rows are used)")
    parser.add_argument("--d", type=int, default=2048)
    parser.add_argument("--c", type=int, default=1000)
    parser.add_argument("--selections", default=SELECTION_CELLS,
                        help="pool:sampler:b/N cells to select with the whole and the sliced product, comma-separated ('' for none)")
    parser.add_argument("--selection-width", type=int, default=512, help="K of the sliced product in those selections")
    parser.add_argument("--selection-repeats", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=WORK)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    slices = [int(k) for k in args.slices.split(",")]
    if not all(0 < k < args.d for k in slices):
        parser.error(f"--slices: each width K must lie between 1 and d - 1 = {args.d - 1} (got {args.slices})")
    if not 0 < args.selection_width < args.d:
        parser.error(f"--selection-width must lie between 1 and d - 1 = {args.d - 1} (got {args.selection_width})")
    try:
        cells = parse_cells(args.selections)
    except ValueError as error:
        parser.error(str(error))
    runs = [measure(pool, args.rows, slices, args.repeats, args.seed, (args.n, args.d, args.c), args.workdir) for pool in args.pools.split(",")]
    selections = measure_selections(cells, args.selection_width, args.selection_repeats, args.seed, (args.n, args.d, args.c), args.workdir)
    command = "python -m benchmarks.float32_bound" + ("" if args.rows == 8192 else f" --rows {args.rows}")
    write_results(args.out, {"command": command, "what": __doc__.splitlines()[0] + " " + __doc__.splitlines()[1], "runs": runs,
                             "selections": selections})


if __name__ == "__main__":
    main()
