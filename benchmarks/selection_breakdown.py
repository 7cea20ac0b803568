"""Where a streaming sampler's time goes beside the bare product, part by part (a benchmark, not a test).

End-to-end ratios to the bare product move by tens of percent between runs on a shared 2-core
host; the CPU seconds of each part of a selection move much less. For each sampler and budget
fraction it times, in one process, the bare float32 product and then one selection from features,
and records:

- ``product_wall_s``, ``convert_wall_s``: the fast product and the float16 -> float32 conversion of
  each block, wall time in the thread that streams;
- ``bound_cpu_s``, ``score_cpu_s``: CPU seconds the worker threads spent on the logits' error
  bounds and on the sampler's score intervals;
- ``consumer_cpu_s``: CPU seconds the streaming thread spent on what the sampler does with each
  run's intervals (thresholds, candidates);
- ``exact_rows``, ``exact_wall_s``: rows whose exact logits were computed (float64 products) and
  the wall time of those products; ``partial_rows``: rows scored from a few classes' exact logits;
- ``stream_wall_s``, ``total_wall_s`` and the process's CPU seconds (``--compare`` also shows their
  difference: the time outside the stream, i.e. setup, BASE's walk and the exact scores of the picks).

The parts are found by wrapping the library's functions for the run (``Pool.map_unlabeled_bounds``,
the float32 filter's ``product`` and ``bound``, ``Pool.reference_logits``); nothing else changes.

    python -m benchmarks.selection_breakdown                       # realistic 100k pool, base and margin
    python -m benchmarks.selection_breakdown --samplers base,mase --fractions 0.001,0.1
    python -m benchmarks.selection_breakdown --compare BEFORE.json,... AFTER.json,...   # the table of two codes
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from al_core import linear
from al_core.errors import InputError
from al_core.samplers import pool as pool_module
from al_core.samplers import select_with_scores
from benchmarks.realistic_pool import WORK, build_named_pool
from benchmarks.selection_grid import bare_product_seconds
from pipeline.results_file import write_results

OUT = Path("benchmarks/results/selection_breakdown.json")


PARTS = ("bound_cpu_s", "consumer_cpu_s", "convert_wall_s", "exact_wall_s", "product_wall_s", "score_cpu_s", "stream_wall_s")


class Parts:
    """Seconds per part, added from any thread."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.rows = 0
        self._lock = threading.Lock()

    def add(self, name: str, seconds: float) -> None:
        with self._lock:
            self.seconds[name] = self.seconds.get(name, 0.0) + seconds


def _timed(parts: Parts, name: str, function, clock):
    def wrapper(*args, **kwargs):
        started = clock()
        try:
            return function(*args, **kwargs)
        finally:
            parts.add(name, clock() - started)
    return wrapper


@contextmanager
def instrumented(parts: Parts):
    """The library's streaming functions wrapped to add their time to ``parts``, for the block's duration."""
    filter_type = linear.LOGIT_FILTERS["float32"]
    saved = (filter_type.product, filter_type.bound, pool_module.as_float32, pool_module.Pool.map_unlabeled_bounds,
             pool_module.Pool.reference_logits)
    stream = saved[3]
    exact = saved[4]

    def map_unlabeled_bounds(self, fn):
        started = time.perf_counter()
        items = stream(self, _timed(parts, "score_cpu_s", fn, time.thread_time))
        while True:
            try:
                item = next(items)
            except StopIteration:
                break
            consumer = time.thread_time()
            yield item
            parts.add("consumer_cpu_s", time.thread_time() - consumer)
        parts.add("stream_wall_s", time.perf_counter() - started)

    def reference_logits(self, rows):
        parts.rows += len(rows)
        return _timed(parts, "exact_wall_s", exact, time.perf_counter)(self, rows)

    filter_type.product = _timed(parts, "product_wall_s", saved[0], time.perf_counter)
    filter_type.bound = _timed(parts, "bound_cpu_s", saved[1], time.thread_time)
    pool_module.as_float32 = _timed(parts, "convert_wall_s", saved[2], time.perf_counter)
    pool_module.Pool.map_unlabeled_bounds = map_unlabeled_bounds
    pool_module.Pool.reference_logits = reference_logits
    try:
        yield parts
    finally:
        (filter_type.product, filter_type.bound, pool_module.as_float32, pool_module.Pool.map_unlabeled_bounds,
         pool_module.Pool.reference_logits) = saved


def measure(features, weight, bias, labeled, sampler: str, budget: int) -> dict:
    """One bare product, then one selection with its parts timed."""
    bare = bare_product_seconds(features, weight, bias, 1)
    with instrumented(Parts()) as parts:
        cpu, started = time.process_time(), time.perf_counter()
        selection = select_with_scores(sampler, budget, features=features, head_weight=weight, head_bias=bias,
                                       labeled_mask=labeled, seed=0)
        total, cpu = time.perf_counter() - started, time.process_time() - cpu
    row = {"sampler": sampler, "budget": budget, "bare_product_s": round(bare, 3), "total_wall_s": round(total, 3),
           "x_bare_product": round(total / bare, 3), "process_cpu_s": round(cpu, 3), "exact_rows": parts.rows,
           **{name: round(parts.seconds.get(name, 0.0), 3) for name in PARTS}}  # a part that never ran took 0 s
    row["refined_rows"] = int(selection.notes.get("refined_rows", 0))
    row["partial_rows"] = int(selection.notes.get("partial_rows", 0))  # rows scored from a few classes' exact logits
    return row


COMPARED = (("x bare", "x_bare_product", "{:.2f}"), ("main-thread CPU s", "consumer_cpu_s", "{:.2f}"),
            ("exact logits s", "exact_wall_s", "{:.2f}"), ("score CPU s", "score_cpu_s", "{:.2f}"),
            ("outside the stream s", "outside_stream_wall_s", "{:.2f}"))
DERIVED = {"outside_stream_wall_s": lambda run: run["total_wall_s"] - run["stream_wall_s"]}  # setup, BASE's walk, exact scores of the picks


def compare(before: list[Path], after: list[Path]) -> str:
    """A markdown table: per sampler and budget fraction, the median of every measurement of each
    part in the ``before`` files and in the ``after`` files, side by side."""
    cells: dict[tuple[str, float], dict[tuple[str, str], list[float]]] = {}
    needed = {"sampler", "fraction", "total_wall_s", "stream_wall_s", *(field for _, field, _ in COMPARED if field not in DERIVED)}
    for side, paths in (("before", before), ("after", after)):
        for path in paths:
            if not Path(path).is_file():
                raise InputError(f"{path}: no such results file (expected one written by python -m benchmarks.selection_breakdown)")
            for run in json.loads(Path(path).read_text()).get("runs", []):
                missing = sorted(needed - set(run))
                if missing:
                    raise InputError(f"{path}: a run lacks {', '.join(missing)}; expected a file written by "
                                     "python -m benchmarks.selection_breakdown")
                cell = cells.setdefault((run["sampler"], run["fraction"]), {})
                for _, field, _ in COMPARED:
                    cell.setdefault((side, field), []).append(DERIVED[field](run) if field in DERIVED else run[field])
    if not cells:
        raise InputError(f"no runs in {', '.join(map(str, [*before, *after]))}")
    header = "| sampler | b/N | " + " | ".join(f"{name} before | after" for name, _, _ in COMPARED) + " |"
    lines = [header, "|" + "---|" * (2 + 2 * len(COMPARED))]
    for (sampler, fraction), cell in sorted(cells.items(), key=lambda item: (item[0][1], item[0][0])):
        values = [form.format(statistics.median(cell[(side, field)])) for _, field, form in COMPARED for side in ("before", "after")]
        lines.append(f"| {sampler} | {fraction:.1%} | " + " | ".join(values) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", default="realistic", choices=("realistic", "imagenet"))
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--d", type=int, default=2048)
    parser.add_argument("--c", type=int, default=1000)
    parser.add_argument("--samplers", default="base,margin")
    parser.add_argument("--fractions", default="0.001,0.1")
    parser.add_argument("--repeats", type=int, default=2, help="measurements of each cell (each is recorded)")
    parser.add_argument("--workdir", type=Path, default=WORK)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--compare", nargs=2, metavar=("BEFORE_FILES", "AFTER_FILES"),
                        help="print the before/after table of two comma-separated lists of results files; measure nothing")
    args = parser.parse_args()
    if args.compare:
        try:
            print(compare(*([Path(name) for name in files.split(",")] for files in args.compare)), end="")
        except InputError as error:
            parser.error(str(error))
        return
    features, weight, bias, _ = build_named_pool(args.pool, args.workdir, args.n, args.d, args.c, 0)
    labeled = np.zeros(args.n, dtype=bool)
    labeled[: args.n // 100] = True
    bare_product_seconds(features, weight, bias, 1)  # the pool's pages read once before any timing
    rows = []
    for fraction in map(float, args.fractions.split(",")):
        for sampler in args.samplers.split(","):
            for _ in range(args.repeats):
                row = measure(features, weight, bias, labeled, sampler, max(1, int(fraction * args.n)))
                rows.append({"fraction": fraction, **row})
                print(" ".join(f"{key}={value}" for key, value in rows[-1].items()), flush=True)
    write_results(args.out, {"what": __doc__.splitlines()[0], "pool": args.pool, "n": args.n, "d": args.d, "c": args.c,
                             "labeled": int(labeled.sum()), "runs": rows})


if __name__ == "__main__":
    main()
