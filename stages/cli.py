"""``al``: one command per DVC stage, plus helpers for people (compare, schedule, samplers).

Every stage reads ``params.yaml`` from the working directory (as DVC runs it) and exits with a
one-line error naming the file or field at fault when its input is wrong.
"""

from __future__ import annotations

import functools
import sys
import warnings
from enum import Enum
from pathlib import Path

import typer

from al_core.errors import DatasetMissingError, InputError

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
PARAMS_OPTION = typer.Option(Path("params.yaml"), "--params", help="params file to read")


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    typer.secho(f"warning: {message}", fg=typer.colors.YELLOW, err=True)


def friendly_errors(fn):
    """Bad input: one line ``error: ...`` and exit code 2. Warnings: one line ``warning: ...``
    (no source line)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warning
            try:
                return fn(*args, **kwargs)
            except (InputError, DatasetMissingError) as error:
                typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
                sys.exit(2)

    return wrapper


def _params(path: Path):
    from pipeline.params import Params

    return Params(path)


@app.command()
@friendly_errors
def source(params: Path = PARAMS_OPTION) -> None:
    """Fingerprint of the dataset's files (data/source): prepare and embed re-run when it changes."""
    from stages.source import run_source

    run_source(_params(params))


@app.command()
@friendly_errors
def prepare(params: Path = PARAMS_OPTION) -> None:
    """Pool table (id, label, split) and images from the dataset in data.root."""
    from stages.prepare import run_prepare

    run_prepare(_params(params))


@app.command()
@friendly_errors
def init(params: Path = PARAMS_OPTION) -> None:
    """Seeded random initial labeled set s0 (runs/init)."""
    from stages.init import run_init

    run_init(_params(params))


@app.command()
@friendly_errors
def embed(params: Path = PARAMS_OPTION) -> None:
    """Frozen-backbone features of every image (data/embed)."""
    from stages.embed import run_embed

    run_embed(_params(params))


@app.command()
@friendly_errors
def train(round_name: str, previous: str, params: Path = PARAMS_OPTION) -> None:
    """Add the previous round's queries to the labeled set and train (the head, or the whole network in finetune mode)."""
    from stages.train import run_train

    run_train(_params(params), round_name, previous)


@app.command()
@friendly_errors
def evaluate(round_name: str, params: Path = PARAMS_OPTION) -> None:
    """Test top-1/top-5 and labeled-set class statistics of one round."""
    from stages.evaluate import run_evaluate

    run_evaluate(_params(params), round_name)


@app.command()
@friendly_errors
def labels(round_name: str, params: Path = PARAMS_OPTION) -> None:
    """Labels of the round's queries: the dataset's (labels.source oracle) or the annotation store's (runs/<round>/labels.parquet)."""
    from stages.labels import run_labels

    run_labels(_params(params), round_name)


@app.command("select")
@friendly_errors
def select_command(round_name: str, params: Path = PARAMS_OPTION) -> None:
    """Pick the next ``budget`` items with ``sampler`` (runs/<round>/queried.parquet)."""
    from stages.select import run_select

    run_select(_params(params), round_name)


@app.command()
@friendly_errors
def cluster(params: Path = PARAMS_OPTION) -> None:
    """Cluster the pool's features once (k-means codebook + average linkage) for margin_clustering."""
    from stages.cluster import run_cluster

    run_cluster(_params(params))


@app.command()
@friendly_errors
def full(params: Path = PARAMS_OPTION) -> None:
    """Train the same head on every pool label once: the full-data reference."""
    from stages.full import run_full

    run_full(_params(params))


class ExportFormat(str, Enum):
    label_studio = "label-studio"
    csv = "csv"


@app.command()
@friendly_errors
def export(
    round_name: str = typer.Argument(..., help="round whose batch to export (init, r00, ...)"),
    format: ExportFormat = typer.Option(ExportFormat.label_studio, "--format", help="label-studio: tasks + labeling config; csv: a table"),
    out: Path = typer.Option(Path("annotate"), help="folder to write into"),
    document_root: Path = typer.Option(None, help="label-studio: the folder Label Studio serves local files from "
                                       "(LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT; default data.root); ignored with labels.image_url"),
    params: Path = PARAMS_OPTION,
) -> None:
    """Write ROUND's batch for annotators. Reads runs/ROUND/queried.parquet (and the round's head for
    the predicted class) and the annotation store (items labeled already are left out). Writes
    OUT/ROUND.tasks.json (Label Studio task import: data.image, data.item_id, the prediction and the
    sampler's score) and OUT/config.xml (the labeling config), or OUT/ROUND.csv (id, path, predicted,
    score, rank)."""
    from pipeline.annotate import run_export

    run_export(_params(params), round_name, format.value, out, document_root)


@app.command("import")
@friendly_errors
def import_command(
    file: Path = typer.Argument(..., help="a Label Studio export (JSON, JSON_MIN or CSV) or a CSV of id (or path), label"),
    params: Path = PARAMS_OPTION,
) -> None:
    """Add annotators' labels to the annotation store (labels.store/labels.parquet). All rows or
    none: a file with an unknown item, an unknown class or a malformed row changes nothing and names
    the first bad rows; the same file twice is a no-op; the store is only appended to. Then
    `dvc repro` continues with the new labels."""
    from pipeline.annotate import run_import

    run_import(_params(params), file)


@app.command()
@friendly_errors
def campaign(params: Path = PARAMS_OPTION) -> None:
    """Where a labeling campaign stands, per round: items sent, labeled, awaiting, unusable, disagreements
    and the label that won, annotation time, labels per class, the stopping signal (reports/campaign.md)."""
    from pipeline.campaign import run_campaign

    run_campaign(_params(params))


class ReportScope(str, Enum):
    run = "run"
    all = "all"


ALL_COMMITS_OPTION = typer.Option(False, "--all-commits", help="experiments of every commit, not only those of the "
                                  "current one (`dvc exp show`'s); one git read per commit, slow on a long history")
ANY_CODE_OPTION = typer.Option(False, "--any-code", help="also compare runs made by other versions of the code (told apart by a code column)")


@app.command()
@friendly_errors
def report(
    scope: ReportScope = typer.Option(ReportScope.all, help="run: this workspace's rounds (the DVC stage); all: every experiment"),
    all_commits: bool = ALL_COMMITS_OPTION,
    out: Path = typer.Option(Path("reports/compare"), help="where scope 'all' writes index.html, summary.md and figures"),
    check: bool = typer.Option(False, "--check", help="open index.html in headless Chromium and fail unless every figure shows"),
    any_code: bool = ANY_CODE_OPTION,
    params: Path = PARAMS_OPTION,
) -> None:
    """Figures and tables: of this run (metrics.json, reports/) or of every experiment (reports/compare/)."""
    if scope is ReportScope.run:
        from stages.report import run_report

        run_report(_params(params))
    else:
        from reporting.report import run_report_all

        run_report_all(all_commits=all_commits, out=out, check=check, any_code=any_code)


@app.command()
@friendly_errors
def compare(all_commits: bool = ALL_COMMITS_OPTION, any_code: bool = ANY_CODE_OPTION) -> None:
    """Print top-1 per label count and final imbalance for the workspace and every DVC experiment."""
    from reporting.report import run_compare

    run_compare(all_commits=all_commits, any_code=any_code)


@app.command(context_settings={"ignore_unknown_options": True})  # "-3" reaches the check below, not click's usage box
@friendly_errors
def schedule(rounds: str = typer.Argument(..., help="number of AL rounds"), params: Path = PARAMS_OPTION) -> None:
    """Rewrite the schedule block of params.yaml for ROUNDS rounds (r00 .. r{ROUNDS-1})."""
    from pipeline.schedule import write_schedule

    try:
        count = int(rounds)
    except ValueError:
        raise InputError(f"ROUNDS must be a whole number of rounds, got {rounds!r}") from None
    write_schedule(params, count)


@app.command("set")
@friendly_errors
def set_command(assignments: list[str] = typer.Argument(..., help="KEY=VALUE pairs: dotted keys, YAML values"),
                params: Path = PARAMS_OPTION) -> None:
    """Set params.yaml keys, keeping its comments (e.g. al set data.dataset=imagefolder labels.source=annotations).
    The result is checked first: a misspelled key or a bad value changes nothing."""
    from pipeline.schedule import set_params

    set_params(params, assignments)


study_app = typer.Typer(no_args_is_help=True, help="A grid of experiments (datasets x samplers x seeds) and its statistics.")
app.add_typer(study_app, name="study")
GRID_OPTION = typer.Option(Path("reports/study/grid.yaml"), "--grid", help="the study's grid (datasets, samplers, seeds)")


@study_app.command("run")
@friendly_errors
def study_run(
    grid: Path = GRID_OPTION,
    only: list[str] = typer.Option(None, "--only", help="run only this cell (dataset/sampler/seed<k>); repeatable"),
    limit: int = typer.Option(None, "--limit", help="run at most this many cells, then stop"),
    force: bool = typer.Option(False, "--force", help="run cells that have results again (to check they reproduce)"),
    results: Path = typer.Option(Path("reports/study/runs"), "--results", help="where finished cells' results go"),
) -> None:
    """Run every cell of the grid without results yet, one after another (resumable)."""
    from pipeline.study import run_study

    run_study(grid, only=only or None, limit=limit, force=force, results=results)


@study_app.command("report")
@friendly_errors
def study_report(grid: Path = GRID_OPTION) -> None:
    """Statistics of the finished cells: reports/study/summary.md, CSVs and study.png."""
    from reporting.study import run_study_report

    run_study_report(grid)


@app.command()
def samplers() -> None:
    """List the registered samplers, what each needs, and its options (set them in params.yaml
    as select.<sampler>.<option>)."""
    from al_core.samplers import SAMPLERS

    for name, spec in sorted(SAMPLERS.items()):
        needs = ", ".join(sorted(spec.needs)) or "-"
        typer.echo(f"{name:20s} needs: {needs:22s} {spec.summary}")
        for option, setting in spec.options.items():
            where = f"select.{name}.{option}" if setting.settable else f"{option} (library only)"
            typer.echo(f"{'':22s}{where}: {setting.describe()}; {setting.help}")


if __name__ == "__main__":
    app()
