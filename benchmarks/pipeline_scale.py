"""The whole pipeline (`dvc repro`) on an ImageNet-shaped pool of precomputed features (a benchmark).

Builds the synthetic pool of ``benchmarks/selection.py`` (1,281,167 training rows + 50,000 test
rows, d = 2048 float16, C = 1000 unequal classes) as a ``data.dataset: features`` folder, copies
the project's code, ``dvc.yaml`` and ``.dvc/config`` into a fresh git + DVC workspace, and runs
the real ``dvc repro`` with s0 = b = 10,000, 3 rounds of BASE (the issue's setting). Every stage's
``al`` command runs through a small wrapper that records its wall time, its peak resident
anonymous memory (Linux ``RssAnon``: what it holds beyond memory-mapped files, sampled every
50 ms, children included) and its peak resident set (``VmHWM``, mapped file pages included).
DVC's own time (hashing, caching outputs) is the difference between the total and the stages.

    python -m benchmarks.pipeline_scale                 # the ImageNet shape: ~12 GB disk, ~30 min here
    python -m benchmarks.pipeline_scale --n 60000 --test 5000 --d 128 --c 100 --initial 1000 --budget 1000
    python -m benchmarks.pipeline_scale --pool default --out benchmarks/results/pipeline_default.json

``--pool default`` times the project's own default run instead (params.yaml as it is: Fashion-MNIST
through EfficientNet-Lite0, embed included), from scratch in a fresh workspace.

Writes ``--out`` (JSON with the machine). The full-data probe runs ``--full-epochs`` epochs
(``full.max_epochs``); its time per epoch is recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import yaml

from pipeline.results_file import machine, write_results
from benchmarks.realistic_pool import POOL_HELP, POOLS, build_named_pool

ROOT = Path(__file__).resolve().parents[1]
WRAPPER = '''#!{python}
"""`al` as DVC calls it, timed: wall seconds and peak RssAnon / VmHWM of the process tree."""
import json, os, subprocess, sys, threading, time

def status(pid):
    values = {{}}
    try:
        for line in open(f"/proc/{{pid}}/status"):
            key, _, value = line.partition(":")
            if key in ("RssAnon", "VmHWM"):
                values[key] = int(value.split()[0]) * 1024
    except OSError:
        pass
    return values

def tree(pid):
    found = [pid]
    try:
        for child in open(f"/proc/{{pid}}/task/{{pid}}/children").read().split():
            found += tree(int(child))
    except OSError:
        pass
    return found

started = time.perf_counter()
# python -m from the workspace: its copy of the code runs, not the editable install's checkout.
process = subprocess.Popen([sys.executable, "-m", "stages.cli"] + sys.argv[1:], env=dict(os.environ, PYTHONPATH=os.getcwd()))
peak = {{"RssAnon": 0, "VmHWM": 0}}
def sample():
    while process.poll() is None:
        totals = {{"RssAnon": 0, "VmHWM": 0}}
        for pid in tree(process.pid):
            for key, value in status(pid).items():
                totals[key] += value
        for key in peak:
            peak[key] = max(peak[key], totals[key])
        time.sleep(0.05)
thread = threading.Thread(target=sample, daemon=True)
thread.start()
code = process.wait()
thread.join()
with open({log!r}, "a") as log:
    log.write(json.dumps({{"command": sys.argv[1:], "seconds": round(time.perf_counter() - started, 1),
                          "peak_rss_anon_gib": round(peak["RssAnon"] / 2**30, 2),
                          "peak_vm_hwm_gib": round(peak["VmHWM"] / 2**30, 2), "exit": code}}) + "\\n")
sys.exit(code)
'''


def write_feature_dataset(folder: Path, args) -> Path:
    """features.npy (the benchmark pool, N train + test rows) and items.parquet beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    total = args.n + args.test
    features, _, _, labels = build_named_pool(args.pool, folder, total, args.d, args.c, args.seed)
    link = folder / "features.npy"
    if not link.exists():
        link.symlink_to(Path(features.filename).name)
    items = folder / "items.parquet"
    if not items.exists():
        split = np.full(total, "train", dtype=object)
        split[np.random.default_rng(args.seed + 2).choice(total, size=args.test, replace=False)] = "test"
        pl.DataFrame({"id": np.arange(total, dtype=np.int64), "label": labels, "split": split.tolist()}).write_parquet(items)
    return folder


def _benchmark_params(params: dict, data: Path, args) -> None:
    """params.yaml changed for the benchmark pool: its sampler, sizes and rounds, the features folder."""
    params.update(sampler=args.sampler, initial_size=args.initial, budget=args.budget,
                  schedule={f"r{k:02d}": ("init" if k == 0 else f"r{k - 1:02d}") for k in range(args.rounds)})
    params["data"].update(dataset="features", root=str(data), val_size=args.val)
    params["full"] = {"max_epochs": args.full_epochs}


def make_workspace(work: Path, data: Path | None, args) -> dict:
    """A fresh git + DVC workspace with the project's code; ``data`` None keeps params.yaml as it is."""
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    for package in ("al_core", "stages", "pipeline", "reporting"):
        shutil.copytree(ROOT / package, work / package, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", ".dvcignore"):
        shutil.copy(ROOT / name, work / name)
    shutil.copytree(ROOT / "data" / "annotations", work / "data" / "annotations")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    if data is not None:
        _benchmark_params(params, data, args)
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    bin_dir = work / ".bench-bin"
    bin_dir.mkdir()
    log = work / "stages.jsonl"
    wrapper = bin_dir / "al"
    wrapper.write_text(WRAPPER.format(python=sys.executable, log=str(log)))
    wrapper.chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    for command in (["git", "init", "-q"], ["git", "config", "user.email", "bench@localhost"], ["git", "config", "user.name", "bench"],
                    ["dvc", "init", "-q"]):
        subprocess.run(command, cwd=work, env=env, check=True)
    shutil.copy(ROOT / ".dvc" / "config", work / ".dvc" / "config")  # the project's cache settings
    (work / ".gitignore").write_text(".bench-bin/\nstages.jsonl\n")
    subprocess.run(["git", "add", "-A"], cwd=work, env=env, check=True)
    subprocess.run(["git", "commit", "-qm", "baseline"], cwd=work, env=env, check=True)
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_281_167, help="training rows (pool + val)")
    parser.add_argument("--test", type=int, default=50_000)
    parser.add_argument("--d", type=int, default=2048)
    parser.add_argument("--c", type=int, default=1000)
    parser.add_argument("--val", type=int, default=10_000, help="data.val_size")
    parser.add_argument("--initial", type=int, default=10_000)
    parser.add_argument("--budget", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sampler", default="base")
    parser.add_argument("--full-epochs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pool", choices=(*POOLS, "default"), default="imagenet",
                        help=POOL_HELP + "; or default: the project's default run, params.yaml as it is")
    parser.add_argument("--workdir", type=Path, default=ROOT / "benchmarks" / ".work" / "pipeline_scale")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "pipeline_scale.json")
    args = parser.parse_args()

    data = None
    if args.pool != "default":
        started = time.perf_counter()
        data = write_feature_dataset(args.workdir / "embeddings", args)
        build_seconds = time.perf_counter() - started
        print(f"pool: {args.n + args.test} x {args.d} float16 in {data} ({build_seconds:.0f} s)", flush=True)
    work = args.workdir / "workspace"
    env = make_workspace(work, data, args)
    started = time.perf_counter()
    subprocess.run(["dvc", "repro"], cwd=work, env=env, check=True)
    total = time.perf_counter() - started
    stages = [json.loads(line) for line in (work / "stages.jsonl").read_text().splitlines()]
    for row in stages:
        row["stage"] = " ".join(row.pop("command"))
    cache_bytes = sum(f.stat().st_size for f in (work / ".dvc" / "cache").rglob("*") if f.is_file())
    if data is None:
        params = yaml.safe_load((work / "params.yaml").read_text())
        what = "dvc repro of the default run from scratch (params.yaml as it is)"
        shape = {"dataset": params["data"]["dataset"], "initial_size": params["initial_size"], "budget": params["budget"],
                 "rounds": len(params["schedule"]), "sampler": params["sampler"]}
    else:
        what = f"dvc repro of the whole pipeline on the {args.pool} benchmark pool of precomputed features"
        shape = {"train_rows": args.n, "test_rows": args.test, "d": args.d, "classes": args.c, "val_size": args.val,
                 "initial_size": args.initial, "budget": args.budget, "rounds": args.rounds, "sampler": args.sampler,
                 "full_max_epochs": args.full_epochs}
    report = {
        "what": what,
        "machine": machine(),
        "pool": args.pool,
        "shape": shape,
        "dvc_cache_type": (ROOT / ".dvc" / "config").read_text().strip(),
        "stages": stages,
        "dvc_repro_seconds": round(total, 1),
        "dvc_overhead_seconds": round(total - sum(row["seconds"] for row in stages), 1),
        "dvc_cache_gib": round(cache_bytes / 2**30, 2),
        "full": json.loads((work / "data" / "full" / "timing.json").read_text()),
        "final_metrics": json.loads((work / "metrics.json").read_text()),
    }
    write_results(args.out, report)
    for row in stages:
        print(f"{row['stage']:24s} {row['seconds']:8.1f} s  RssAnon {row['peak_rss_anon_gib']:6.2f} GiB  VmHWM {row['peak_vm_hwm_gib']:6.2f} GiB")
    print(f"dvc repro {total:.0f} s (DVC itself {report['dvc_overhead_seconds']:.0f} s), cache {report['dvc_cache_gib']} GiB")


if __name__ == "__main__":
    main()
