"""Finished runs to compare: the workspace and DVC's experiments, read through ``dvc.api``.

Each run's params are read whole (``dvc.api.params_show``), its results from the files the
report stage committed (``dvc.api.read`` of ``reports/rounds.csv`` and ``metrics.json``), and its
*code version* from its ``dvc.lock``: a hash of the content of every project file the
result-computing stages depend on (every stage but ``report``). Runs of other code are left out
unless asked for (then told apart by a ``code`` column); two runs with the same code and the same
params are one run (a baseline commit and the experiment that reproduced it): the first seen
stays. Every run left out is named, with why.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import yaml
from tqdm import tqdm

from al_core.artifacts import read_json
from al_core.errors import InputError
from pipeline.artifacts import REPORTS_DIR
from pipeline.params import Params

ROUNDS_CSV = REPORTS_DIR / "rounds.csv"
SUMMARY = "metrics.json"
LOCK = "dvc.lock"
CODE_DIRS = ("al_core", "stages", "pipeline")  # project code whose content decides the results
UNVERSIONED = "unknown"


@dataclass(frozen=True)
class Experiment:
    """One finished run: its name, flattened params, per-round results, full-data probe and code version."""

    name: str
    params: dict
    rounds: pl.DataFrame
    full: dict | None
    code: str = UNVERSIONED

    @property
    def seed(self):
        return self.params.get("seed")


@dataclass
class Gathered:
    """The runs to compare, and every run left out with the reason."""

    experiments: list[Experiment] = field(default_factory=list)
    left_out: list[tuple[str, str]] = field(default_factory=list)


def flatten(params: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in params.items():
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def code_version(lock_text: str | None) -> str:
    """A short hash of the md5 of every project-code dependency in a ``dvc.lock`` (all stages but
    ``report``, whose code only draws): equal for runs whose results came from the same code."""
    if not lock_text:
        return UNVERSIONED
    stages = (yaml.safe_load(lock_text) or {}).get("stages") or {}
    entries = sorted({
        (dep["path"], dep.get("md5") or dep.get("hash") or "")
        for name, stage in stages.items() if name != "report"
        for dep in stage.get("deps") or []
        if dep.get("path", "").split("/")[0] in CODE_DIRS
    })
    return hashlib.sha256(json.dumps(entries).encode()).hexdigest()[:10] if entries else UNVERSIONED


def full_from_summary(summary: dict) -> dict | None:
    if "full_top1" not in summary:
        return None
    return {"top1": summary["full_top1"], "top5": summary.get("full_top5")}


def not_a_project(error: Exception) -> InputError:
    return InputError(f"{Path.cwd()} is not a DVC project in a git repository ({type(error).__name__}); run al report "
                      "and al compare from the project's root (git init and dvc init make one)")


def check_project() -> None:
    """An error unless the working directory is in a DVC project inside a git repository."""
    from dvc.exceptions import NotDvcRepoError
    from dvc.repo import Repo
    from dvc.scm import NoSCMError

    try:
        with Repo() as repo:
            if type(repo.scm).__name__ == "NoSCM":
                raise NoSCMError("no git repository")
    except (NotDvcRepoError, NoSCMError) as error:
        raise not_a_project(error) from None


def workspace_experiment() -> Experiment | None:
    """The workspace's last ``report`` output, if it has one and DVC finds every stage up to date."""
    if not ROUNDS_CSV.exists():
        return None
    from dvc.repo import Repo

    with Repo() as repo:
        # The source stage re-runs on every repro by design ("always changed"): not a pending change.
        changed = {stage: why for stage, why in repo.status().items() if why != ["always changed"]}
    if changed:
        print("report: leaving out the workspace: it has changes `dvc repro` has not run yet")
        return None
    summary = read_json(Path(SUMMARY)) if Path(SUMMARY).exists() else {}
    lock = Path(LOCK).read_text() if Path(LOCK).exists() else None
    return Experiment("workspace", flatten(Params().data), pl.read_csv(ROUNDS_CSV), full_from_summary(summary), code_version(lock))


def experiment_revs(all_commits: bool) -> list[tuple[str, str]]:
    """``(name, rev)`` of the baseline commit and the experiments ``dvc exp show`` lists (those of
    HEAD: seconds, whatever the history's length), or with ``all_commits`` of every commit (one
    git read per commit: minutes on a long history)."""
    import dvc.api

    try:
        rows = dvc.api.exp_show(revs=dvc.api.all_commits() if all_commits else None)
    except Exception as error:  # DVC raises its own error types; say what failed
        raise InputError(f"dvc.api.exp_show failed: {error}") from error
    revs, seen = [], set()
    for row in rows:
        rev = row.get("rev")
        if not rev or rev == "workspace" or rev in seen:
            continue
        seen.add(rev)
        revs.append((row.get("Experiment") or rev, rev))
    return revs


def read_at(rev: str, path: str) -> str | None:
    """The text of ``path`` at git revision ``rev`` (None when the revision has no such file)."""
    import dvc.api

    try:
        return dvc.api.read(path, rev=rev)
    except Exception:  # not committed at that revision
        return None


def experiment_at(name: str, rev: str) -> Experiment | str:
    """The run committed at ``rev``, or why it cannot be compared (not finished, a damaged file)."""
    import dvc.api

    rounds = read_at(rev, ROUNDS_CSV.as_posix())
    if rounds is None:
        return f"no {ROUNDS_CSV} committed at {rev[:10]} (not a finished run)"
    summary = read_at(rev, SUMMARY)
    try:
        full = full_from_summary(json.loads(summary)) if summary else None
    except json.JSONDecodeError as error:
        return f"its {SUMMARY} at {rev[:10]} is damaged ({error})"
    try:
        frame = pl.read_csv(io.StringIO(rounds))
        missing = {"labels", "top1"} - set(frame.columns)
        if missing:
            return f"its {ROUNDS_CSV} at {rev[:10]} lacks column(s) {sorted(missing)}"
        frame = frame.with_columns(pl.col("labels").cast(pl.Int64), pl.col("top1").cast(pl.Float64))
    except pl.exceptions.PolarsError as error:
        return f"its {ROUNDS_CSV} at {rev[:10]} is damaged ({str(error).splitlines()[0][:120]})"
    params = dvc.api.params_show(rev=rev, deps=False)
    return Experiment(name, flatten(params), frame, full, code_version(read_at(rev, LOCK)))


def identity(experiment: Experiment) -> str:
    return json.dumps({"code": experiment.code, "params": experiment.params}, sort_keys=True, default=str)


def select_runs(candidates: list[Experiment], any_code: bool) -> Gathered:
    """Keep one run per (code, params) and, unless ``any_code``, only the first run's code version."""
    gathered = Gathered()
    current = candidates[0].code if candidates else None
    seen: dict[str, str] = {}
    for experiment in candidates:
        if not any_code and experiment.code != current:
            gathered.left_out.append((experiment.name, f"other code (version {experiment.code}, compared: {current}); "
                                                       "--any-code includes it"))
            continue
        key = identity(experiment)
        if key in seen:
            gathered.left_out.append((experiment.name, f"same code and params as {seen[key]} (a reproduction, not another seed)"))
            continue
        seen[key] = experiment.name
        gathered.experiments.append(experiment)
    return gathered


def gather_experiments(all_commits: bool = False, any_code: bool = False) -> Gathered:
    """The workspace (when up to date) plus the DVC experiments (of HEAD; of every commit with
    ``all_commits``) with a committed reports/rounds.csv; a run with a damaged file is left out,
    named with the file."""
    check_project()
    candidates = []
    workspace = workspace_experiment()
    if workspace is not None:
        candidates.append(workspace)
    left_out = []
    for name, rev in tqdm(experiment_revs(all_commits), desc="report: reading experiments", unit="exp", leave=False):
        experiment = experiment_at(name, rev)
        if isinstance(experiment, str):
            left_out.append((name, experiment))
            continue
        candidates.append(experiment)
    candidates, elsewhere = this_campaign(candidates, flatten(Params().data))
    gathered = select_runs(candidates, any_code)
    gathered.left_out = left_out + elsewhere + gathered.left_out
    return gathered


CAMPAIGN_KEYS = ("data.dataset", "data.root", "labels.source")


def this_campaign(candidates: list[Experiment], current: dict) -> tuple[list[Experiment], list[tuple[str, str]]]:
    """In a campaign (``labels.source: annotations``), only the runs on its own data: a committed
    demo run or a simulation is another experiment, not a round of this campaign. Elsewhere every run."""
    if current.get("labels.source") != "annotations":
        return candidates, []
    kept, left_out = [], []
    for experiment in candidates:
        differs = [key for key in CAMPAIGN_KEYS if experiment.params.get(key) != current.get(key)]
        if differs:
            left_out.append((experiment.name, f"not this campaign ({differs[0]} {experiment.params.get(differs[0])!r}, "
                                              f"here {current.get(differs[0])!r})"))
        else:
            kept.append(experiment)
    return kept, left_out
