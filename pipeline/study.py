"""``al study run``: a grid of experiments (datasets x samplers x seeds), each cell the default pipeline.

The grid is a small YAML file (``reports/study/grid.yaml``): ``datasets`` maps a name to the
``params.yaml`` keys it changes (dotted, e.g. ``data.imbalance_ratio: 10``), ``samplers`` and
``seeds`` list the rest; every other setting is the repository's ``params.yaml``. Each dataset is
prepared and embedded once (``.study/<dataset>/``); each cell then runs, in its own scratch
folder, the stage commands ``dvc repro`` would run, in the same order (init, labels, per round
train / evaluate / select / labels, cluster for margin_clustering, full, report), in this process,
without DVC's bookkeeping. A finished cell's results (``rounds.csv``, ``metrics.json``, the
ids each round picked, and ``cell.json``: seconds, code version, machine) are moved into
``reports/study/runs/<dataset>/<sampler>/seed<k>/`` in one rename, so a killed study resumes at
the first cell without results, and a finished cell is never run again (``--force`` aside).
Cost: each dataset's extraction once, then per cell its rounds (measured figures: docs/results/study.md).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import yaml

from al_core.errors import InputError
from pipeline.results_file import stamp

GRID = Path("reports/study/grid.yaml")
RESULTS = Path("reports/study/runs")
WORK = Path(".study")
CODE_DIRS = ("al_core", "stages", "pipeline")
CELL_FILES = ("rounds.csv", "metrics.json", "selections.csv", "cell.json")
Stages = Callable[..., None]  # called with a cell's Params in its folder


@dataclass(frozen=True)
class Cell:
    dataset: str
    sampler: str
    seed: int

    @property
    def name(self) -> str:
        return f"{self.dataset}/{self.sampler}/seed{self.seed}"


@dataclass(frozen=True)
class Grid:
    datasets: dict[str, dict]
    samplers: list[str]
    seeds: list[int]
    path: Path

    def cells(self) -> list[Cell]:
        """Dataset by dataset, seed by seed, every sampler: a study stopped early holds whole seeds."""
        return [Cell(dataset, sampler, seed) for dataset in self.datasets for seed in self.seeds for sampler in self.samplers]


def load_grid(path: Path = GRID) -> Grid:
    if not path.is_file():
        raise InputError(f"study grid {path} not found (expected a YAML file with datasets, samplers and seeds)")
    data = yaml.safe_load(path.read_text()) or {}
    datasets, samplers, seeds = data.get("datasets"), data.get("samplers"), data.get("seeds")
    if not isinstance(datasets, dict) or not datasets or not all(isinstance(v, dict) for v in datasets.values()):
        raise InputError(f"{path}: datasets must map each dataset name to the params it changes ({{}} for none)")
    if not isinstance(samplers, list) or not samplers or not all(isinstance(s, str) for s in samplers):
        raise InputError(f"{path}: samplers must be a list of sampler names")
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        raise InputError(f"{path}: seeds must be a list of non-negative integers")
    for dataset, changes in datasets.items():
        per_cell = sorted({"sampler", "seed"} & set(changes))
        if per_cell:
            raise InputError(f"{path}: datasets.{dataset} sets {per_cell[0]}, which every cell takes from the grid's "
                             f"{per_cell[0]}s list; remove it there (list it under {per_cell[0]}s)")
    from al_core.samplers import SAMPLERS

    unknown = [name for name in samplers if name not in SAMPLERS]
    if unknown:
        raise InputError(f"{path}: unknown sampler(s) {unknown}; known: {', '.join(sorted(SAMPLERS))}")
    for key, values in (("samplers", samplers), ("seeds", seeds)):
        repeated = sorted({value for value in values if values.count(value) > 1}, key=str)
        if repeated:
            raise InputError(f"{path}: {key} lists {repeated[0]!r} more than once; each cell would run twice: list it once")
    return Grid(datasets=datasets, samplers=samplers, seeds=seeds, path=path)


def set_dotted(params: dict, dotted: str, value) -> None:
    node = params
    *parents, last = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value


def dataset_params(base: dict, grid: Grid, dataset: str) -> dict:
    params = copy.deepcopy(base)
    for key, value in grid.datasets[dataset].items():
        set_dotted(params, key, value)
    return params


def cell_params(base: dict, grid: Grid, cell: Cell) -> dict:
    params = dataset_params(base, grid, cell.dataset)
    params.update(sampler=cell.sampler, seed=cell.seed)
    return params


def code_version(root: Path = Path(".")) -> str:
    """Hash of every .py file of the code that computes results (al_core, stages, pipeline)."""
    digest = hashlib.sha256()
    for directory in CODE_DIRS:
        for path in sorted((root / directory).rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


@contextmanager
def working_directory(path: Path):
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def _write_params(folder: Path, params: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def prepare_dataset(base: dict, grid: Grid, dataset: str, work: Path, prepare: Stages) -> Path:
    """``work/<dataset>/`` with data/prepare and data/embed, made once by ``prepare`` (a folder
    with a ``done`` mark is reused; its params must match, else it is made again)."""
    from pipeline.params import Params

    folder = work / dataset
    params = dataset_params(base, grid, dataset)
    params.pop("schedule", None)
    wanted = json.dumps({"data": params.get("data"), "backbone": params.get("backbone")}, sort_keys=True)
    mark = folder / "done"
    if mark.is_file() and mark.read_text() == wanted:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    _write_params(folder, params)
    with working_directory(folder):
        print(f"study: preparing and embedding dataset {dataset!r}")
        prepare(Params())
    mark.write_text(wanted)
    return folder


def run_cell(base: dict, grid: Grid, cell: Cell, dataset_folder: Path, work: Path, results: Path, experiment: Stages,
             command: str = "al study run") -> dict:
    """Run one cell (``experiment``: its stages) in ``work/cells/<cell>`` and move its results into ``results/<cell>``."""
    from al_core.artifacts import read_parquet
    from pipeline.params import Params

    folder = work / "cells" / cell.name
    shutil.rmtree(folder, ignore_errors=True)
    _write_params(folder, cell_params(base, grid, cell))
    (folder / "data").mkdir()
    for part in ("prepare", "embed"):
        os.symlink((dataset_folder / "data" / part).resolve(), folder / "data" / part)
    started = time.perf_counter()
    with working_directory(folder):
        params = Params()
        experiment(params)
        selections = pl.concat([
            read_parquet(Path("runs") / round_name / "queried.parquet", {"id": (pl.Int64,)}).select("round", "rank", "id")
            for round_name in ["init", *params.schedule()]
        ])
    seconds = time.perf_counter() - started
    staging = folder / "results"
    staging.mkdir()
    shutil.copy(folder / "reports" / "rounds.csv", staging / "rounds.csv")
    shutil.copy(folder / "metrics.json", staging / "metrics.json")
    selections.write_csv(staging / "selections.csv")
    info = {"cell": cell.name, "seconds": round(seconds, 1), "code": code_version(), **stamp(command)}
    (staging / "cell.json").write_text(json.dumps(info, indent=2) + "\n")
    target = results / cell.name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)  # one rename: a cell's results are all there or not at all
    shutil.rmtree(folder, ignore_errors=True)
    return info


def finished(results: Path, cell: Cell) -> bool:
    return all((results / cell.name / name).is_file() for name in CELL_FILES)


def run_study(prepare: Stages, experiment: Stages, grid_path: Path = GRID, only: list[str] | None = None,
              limit: int | None = None, force: bool = False, results: Path = RESULTS, work: Path = WORK) -> list[str]:
    """Run every cell of the grid that has no results yet (or the ``only`` ones); returns the cells
    run. ``prepare`` makes a dataset's pool table and features, ``experiment`` runs a cell's stages
    (both given a cell's Params, cwd its folder: `stages.experiment`)."""
    from pipeline.params import Params, validate_params

    grid = load_grid(grid_path)
    base = Params(Path("params.yaml")).data  # checked against the schema now, not inside the first cell
    for dataset in grid.datasets:  # and each dataset's changes, named as the grid's
        validate_params(dataset_params(base, grid, dataset), f"{grid_path} (datasets.{dataset})")
    cells = grid.cells()
    if only:
        names = {cell.name for cell in cells}
        missing = [name for name in only if name not in names]
        if missing:
            raise InputError(f"{grid_path}: no cell {missing[0]!r} in the grid (cells are dataset/sampler/seed<k>, e.g. {cells[0].name})")
        cells = [cell for cell in cells if cell.name in only]
    todo = [cell for cell in cells if force or not finished(results, cell)]
    print(f"study: {len(cells)} cell(s) in {grid_path}, {len(cells) - len(todo)} with results, "
          f"{len(todo)} to run" + (f" (this time at most {limit})" if limit is not None else ""))
    if limit is not None:
        todo = todo[:limit]
    command = (f"al study run --grid {grid_path} --out {results}" + "".join(f" --only {name}" for name in only or ())
               + (f" --limit {limit}" if limit is not None else "") + (" --force" if force else ""))
    work, results = work.resolve(), results.resolve()
    done = []
    for index, cell in enumerate(todo, 1):
        dataset_folder = prepare_dataset(base, grid, cell.dataset, work, prepare)
        info = run_cell(base, grid, cell, dataset_folder, work, results, experiment, command)
        final = json.loads((results / cell.name / "metrics.json").read_text())
        print(f"study: [{index}/{len(todo)}] {cell.name}: final top-1 {final.get('final_top1')}, "
              f"imbalance {final.get('final_imbalance')}, {info['seconds']:.0f} s")
        done.append(cell.name)
    return done
