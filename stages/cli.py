"""``al``: the commands people run (labeling, comparing, editing params) and one command per DVC
stage (what ``dvc repro`` runs). Every command reads ``params.yaml`` from the working directory
and, on bad input, exits with code 1 and one line naming the file or key at fault (a command line
that is not one, such as an unknown option or a missing argument, exits with 2, as click and git do).
"""

from __future__ import annotations

import errno
import functools
import sys
import warnings
from enum import Enum
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import typer

from al_core.errors import DatasetMissingError, InputError

LABELING = "Labeling"
REPORTING = "Comparing and reporting"
PROJECT = "Settings and samplers"
STAGES = "Pipeline stages (dvc repro runs these)"
HELP = ("Active learning at the ImageNet scale, as a DVC pipeline. Run `dvc repro` for the rounds in params.yaml; "
        "the commands below send batches to annotators, bring labels back, compare samplers and edit settings.")

app = typer.Typer(add_completion=False, no_args_is_help=True, help=HELP, rich_markup_mode="markdown",
                  context_settings={"help_option_names": ["-h", "--help"]})
PARAMS_OPTION = typer.Option(Path("params.yaml"), "--params", help="params file to read")
INPUT_ERROR = 1  # bad input or data; click exits 2 on a malformed command line


def _version(value: bool) -> None:
    if value:
        try:
            typer.echo(f"al {version('al-imagenet')}")
        except PackageNotFoundError:
            typer.echo("al (not installed: run pip install -e .)")
        raise typer.Exit()


@app.callback()
def main(show_version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                           help="print the version and exit")) -> None:
    pass


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    typer.secho(f"warning: {message}", fg=typer.colors.YELLOW, err=True)


def friendly_errors(fn):
    """Bad input or data: one line ``error: ...`` and exit code 1 (usage errors stay click's 2). Warnings: one line ``warning: ...``
    (no source line)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warning
            try:
                return fn(*args, **kwargs)
            except (InputError, DatasetMissingError) as error:
                typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
                sys.exit(INPUT_ERROR)
            except OSError as error:
                if error.errno not in (errno.ENOSPC, errno.EDQUOT):
                    raise
                # Every artifact is written to a temporary file first and renamed: nothing was half-replaced.
                typer.secho(f"error: no space left on the device ({error.filename or 'writing a file'}); every file "
                            "is as it was before this command: free space and run it again", fg=typer.colors.RED, err=True)
                sys.exit(INPUT_ERROR)

    return wrapper


def _params(path: Path):
    from pipeline.params import Params

    return Params(path)


# --- labeling -------------------------------------------------------------------------------------

class ExportFormat(str, Enum):
    label_studio = "label-studio"
    csv = "csv"


@app.command(rich_help_panel=LABELING)
@friendly_errors
def export(
    round_name: str = typer.Argument(..., metavar="ROUND", help="round whose batch to export (init, r00, ...)"),
    format: ExportFormat = typer.Option(ExportFormat.label_studio, "--format", help="label-studio: tasks + labeling config; csv: a table"),
    out: Path = typer.Option(Path("annotate"), "--out", help="folder to write into"),
    document_root: Path = typer.Option(None, help="label-studio: the folder Label Studio serves local files from "
                                       "(LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT; default data.root); ignored with labels.image_url"),
    params: Path = PARAMS_OPTION,
) -> None:
    """Write ROUND's batch for annotators: OUT/ROUND.tasks.json (Label Studio tasks with the model's
    guess and the sampler's score) and OUT/config.xml (the labeling config), or OUT/ROUND.csv (id,
    path, predicted, score, rank). Items labeled already are left out, and it says how many; an
    earlier batch file is never overwritten (the next is OUT/ROUND-2...).

    Example: al export r00 --out annotate --document-root ../images
    """
    from pipeline.annotate import run_export

    run_export(_params(params), round_name, format.value, out, document_root)


@app.command("import", rich_help_panel=LABELING)
@friendly_errors
def import_command(
    file: Path = typer.Argument(..., help="a Label Studio export (JSON, JSON_MIN or CSV) or a CSV of id (or path), label"),
    params: Path = PARAMS_OPTION,
) -> None:
    """Add annotators' labels to the annotation store (labels.store/labels.parquet). Each annotation
    is stored once (by its Label Studio id): exporting a whole project again adds only the new and
    the edited annotations. All rows or none: a file with an unknown item, an unknown class or a
    malformed row changes nothing and names the first bad rows. Then dvc repro goes on.

    Example: al import ~/Downloads/project-1-at-2026-12-01.json
    """
    from pipeline.annotate import run_import

    run_import(_params(params), file)


URL_OPTION = typer.Option(None, "--url", envvar="LABEL_STUDIO_URL", show_envvar=True,
                          help="Label Studio's address, e.g. http://localhost:8080 (default: the campaign's project's)")
KEY_OPTION = typer.Option(None, "--api-key", envvar="LABEL_STUDIO_API_KEY", show_envvar=True, show_default=False,
                          help="Account & Settings: Personal Access Token (or the legacy Access Token)")


@app.command(rich_help_panel=LABELING)
@friendly_errors
def push(
    round_name: str = typer.Argument(..., metavar="ROUND", help="round whose batch to send (init, r00, ...)"),
    url: str = URL_OPTION,
    api_key: str = KEY_OPTION,
    document_root: Path = typer.Option(None, help="the folder Label Studio serves local files from "
                                       "(its LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT; default data.root)"),
    project: int = typer.Option(None, "--project", help="use this existing project from now on (default: the "
                                "campaign's, created on the first push)"),
    params: Path = PARAMS_OPTION,
) -> None:
    """Send ROUND's batch to the campaign's Label Studio project through its API: the project is created
    on the first push (labeling config, and a local-files storage so the server shows the images);
    later rounds add their tasks to it. Items the project holds already are not added again, and
    items labeled already are left out. The project is remembered in labels.store/label-studio.json.

    Example: al push r01   (with LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY set)
    """
    from pipeline.label_studio import run_push

    run_push(_params(params), round_name, url, api_key, document_root, project)


@app.command(rich_help_panel=LABELING)
@friendly_errors
def pull(url: str = URL_OPTION, api_key: str = KEY_OPTION, params: Path = PARAMS_OPTION) -> None:
    """Store the annotations of the campaign's Label Studio project, by the rules of al import (each
    annotation once; an edit replaces it), and say per round how many tasks are labeled, skipped or
    open. Nothing is stored when the server, the key, the project or one of its tasks is not as
    expected. Then dvc repro goes on.

    Example: al pull && dvc repro
    """
    from pipeline.label_studio import run_pull

    run_pull(_params(params), url, api_key)


@app.command(rich_help_panel=LABELING)
@friendly_errors
def reopen(
    round_name: str = typer.Argument(..., metavar="ROUND", help="the first sent round to select again"),
    yes: bool = typer.Option(False, "--yes", help="drop them; without it, only say what would be dropped"),
    params: Path = PARAMS_OPTION,
) -> None:
    """Select a sent round again: drop the sent batches of ROUND and every later round from the
    ledger (labels.store/sent.parquet), so that dvc repro selects them anew. Without --yes it only
    says what it would drop: the batches, and how many of their items have labels (those stay in the
    store, but train no head unless a new selection picks the items again).

    Example: al reopen r02 --yes
    """
    from pipeline.campaign import run_reopen

    run_reopen(_params(params), round_name, yes)


@app.command(rich_help_panel=LABELING)
@friendly_errors
def campaign(params: Path = PARAMS_OPTION) -> None:
    """Where a labeling campaign stands, per round: items sent, labeled, awaiting, unusable,
    disagreements and the label that won, annotation time, labels per class, and the stopping
    signal (reports/campaign.md, reports/campaign.csv).

    Example: al campaign
    """
    from pipeline.campaign import run_campaign

    run_campaign(_params(params))


# --- comparing and reporting ------------------------------------------------------------------------

class ReportScope(str, Enum):
    run = "run"
    all = "all"


ALL_COMMITS_OPTION = typer.Option(False, "--all-commits", help="experiments of every commit, not only those of the "
                                  "current one (as dvc exp show); one git read per commit, slow on a long history")
ANY_CODE_OPTION = typer.Option(False, "--any-code", help="also compare runs made by other versions of the code (told apart by a code column)")
COMPARE_OUT = Path("reports/compare")


@app.command(rich_help_panel=REPORTING)
@friendly_errors
def report(
    scope: ReportScope = typer.Option(ReportScope.all, help="all: the workspace and the experiments; run: this "
                                      "workspace's rounds (the DVC stage)"),
    all_commits: bool = ALL_COMMITS_OPTION,
    out: Path = typer.Option(COMPARE_OUT, "--out", help="folder for index.html, summary.md and the figures (scope all)"),
    check: bool = typer.Option(False, "--check", help="open index.html in headless Chromium and fail unless every figure shows"),
    any_code: bool = ANY_CODE_OPTION,
    params: Path = PARAMS_OPTION,
) -> None:
    """Figures and tables of every experiment dvc exp show lists (reports/compare/index.html), or with
    --scope run of this run's rounds (metrics.json, reports/rounds.csv, reports/table.md).

    Example: al report --out reports/compare
    """
    if scope is ReportScope.run:
        given = [name for name, used in (("--all-commits", all_commits), ("--out", out != COMPARE_OUT),
                                         ("--check", check), ("--any-code", any_code)) if used]
        if given:
            verb = "applies" if len(given) == 1 else "apply"
            raise InputError(f"{', '.join(given)} {verb} to --scope all (the comparison of experiments), not to --scope run")
        from stages.report import run_report

        run_report(_params(params))
    else:
        from reporting.report import run_report_all

        run_report_all(all_commits=all_commits, out=out, check=check, any_code=any_code)


@app.command(rich_help_panel=REPORTING)
@friendly_errors
def compare(all_commits: bool = ALL_COMMITS_OPTION, any_code: bool = ANY_CODE_OPTION) -> None:
    """Print top-1 per label count and final imbalance for the workspace and every DVC experiment.

    Example: al compare
    """
    from reporting.report import run_compare

    run_compare(all_commits=all_commits, any_code=any_code)


study_app = typer.Typer(no_args_is_help=True, rich_markup_mode="markdown",
                        help="A grid of experiments (datasets x samplers x seeds) and its statistics.")
app.add_typer(study_app, name="study", rich_help_panel=REPORTING)
GRID_OPTION = typer.Option(Path("reports/study/grid.yaml"), "--grid", help="the study's grid (datasets, samplers, seeds)")
CELLS = Path("reports/study/runs")


@study_app.command("run")
@friendly_errors
def study_run(
    grid: Path = GRID_OPTION,
    only: list[str] = typer.Option(None, "--only", help="run only this cell (dataset/sampler/seed<k>); repeatable"),
    limit: int = typer.Option(None, "--limit", help="run at most this many cells, then stop"),
    force: bool = typer.Option(False, "--force", help="run cells that have results again (to check they reproduce)"),
    out: Path = typer.Option(CELLS, "--out", help="folder for the finished cells' results"),
) -> None:
    """Run every cell of the grid without results yet, one after another (resumable).

    Example: al study run --only balanced/base/seed0 --force --out /tmp/check
    """
    from pipeline.study import run_study
    from stages.experiment import run_prepare_and_embed, run_experiment

    run_study(run_prepare_and_embed, run_experiment, grid, only=only or None, limit=limit, force=force, results=out)


@study_app.command("report")
@friendly_errors
def study_report(
    grid: Path = GRID_OPTION,
    cells: Path = typer.Option(CELLS, "--cells", help="folder of the finished cells (al study run --out)"),
    out: Path = typer.Option(Path("reports/study"), "--out", help="folder for summary.md, the CSVs and study.png"),
) -> None:
    """Statistics of the finished cells: summary.md, CSVs and study.png.

    Example: al study report
    """
    from reporting.study import run_study_report

    run_study_report(grid, results=cells, out=out)


# --- settings and samplers ----------------------------------------------------------------------------

@app.command("set", rich_help_panel=PROJECT, context_settings={"ignore_unknown_options": True})
@friendly_errors
def set_command(assignments: list[str] = typer.Argument(..., metavar="KEY=VALUE...", help="dotted keys, YAML values"),
                params: Path = PARAMS_OPTION) -> None:
    """Set params.yaml keys, keeping its comments. The result is checked first: a misspelled key or a
    bad value changes nothing.

    Example: al set data.dataset=imagefolder data.root=../images labels.source=annotations
    """
    from pipeline.edit_params import set_params

    set_params(params, assignments)


@app.command(rich_help_panel=PROJECT, context_settings={"ignore_unknown_options": True})  # "-3" reaches the check
@friendly_errors
def schedule(rounds: str = typer.Argument(..., metavar="ROUNDS", help="number of AL rounds"), params: Path = PARAMS_OPTION) -> None:
    """Rewrite the schedule block of params.yaml for ROUNDS rounds (r00 ... ), keeping every other line.

    Example: al schedule 8
    """
    from pipeline.schedule import write_schedule

    try:
        count = int(rounds)
    except ValueError:
        raise InputError(f"ROUNDS must be a whole number of rounds, got {rounds!r}") from None
    write_schedule(params, count)


@app.command(rich_help_panel=PROJECT)
def samplers() -> None:
    """List the registered samplers, what each needs, and its options (set them in params.yaml as
    select.SAMPLER.OPTION).

    Example: al samplers
    """
    from al_core.samplers import SAMPLERS

    for name, spec in sorted(SAMPLERS.items()):
        needs = ", ".join(sorted(spec.needs)) or "-"
        typer.echo(f"{name:20s} needs: {needs:22s} {spec.summary}")
        for option, setting in spec.options.items():
            where = f"select.{name}.{option}" if setting.settable else f"{option} (library only)"
            typer.echo(f"{'':22s}{where}: {setting.describe()}; {setting.help}")


# --- the stages -------------------------------------------------------------------------------------

@app.command(rich_help_panel=STAGES)
@friendly_errors
def source(params: Path = PARAMS_OPTION) -> None:
    """Fingerprint of the dataset's files (data/source): prepare and embed re-run when it changes.

    Example: al source   (dvc repro runs it on every call)
    """
    from stages.source import run_source

    run_source(_params(params))


@app.command(rich_help_panel=STAGES)
@friendly_errors
def prepare(params: Path = PARAMS_OPTION) -> None:
    """Pool table (id, label, split) and images from the dataset in data.root.

    Example: al prepare && al embed
    """
    from stages.prepare import run_prepare

    run_prepare(_params(params))


@app.command(rich_help_panel=STAGES)
@friendly_errors
def embed(params: Path = PARAMS_OPTION) -> None:
    """Frozen-backbone features of every image (data/embed); a killed run resumes from its finished shards.

    Example: al embed
    """
    from stages.embed import run_embed

    run_embed(_params(params))


@app.command(rich_help_panel=STAGES)
@friendly_errors
def init(params: Path = PARAMS_OPTION) -> None:
    """Seeded random initial labeled set s0 (runs/init), or the dataset's seed set.

    Example: al init && al labels init
    """
    from stages.init import run_init

    run_init(_params(params))


@app.command(rich_help_panel=STAGES)
@friendly_errors
def labels(round_name: str = typer.Argument(..., metavar="ROUND"), params: Path = PARAMS_OPTION) -> None:
    """Labels of ROUND's queries: the dataset's (labels.source oracle) or the annotation store's.

    Example: al labels r00
    """
    from stages.labels import run_labels

    run_labels(_params(params), round_name)


@app.command(rich_help_panel=STAGES)
@friendly_errors
def train(round_name: str = typer.Argument(..., metavar="ROUND"), previous: str = typer.Argument(..., metavar="PREVIOUS"),
          params: Path = PARAMS_OPTION) -> None:
    """Add PREVIOUS round's queries to the labeled set and train ROUND's head (or the whole network
    in finetune mode).

    Example: al train r01 r00
    """
    from stages.train import run_train

    run_train(_params(params), round_name, previous)


@app.command(rich_help_panel=STAGES)
@friendly_errors
def evaluate(round_name: str = typer.Argument(..., metavar="ROUND"), params: Path = PARAMS_OPTION) -> None:
    """Test top-1/top-5, labeled-set class statistics and the stop set's predictions of ROUND.

    Example: al evaluate r01
    """
    from stages.evaluate import run_evaluate

    run_evaluate(_params(params), round_name)


@app.command("select", rich_help_panel=STAGES)
@friendly_errors
def select_command(round_name: str = typer.Argument(..., metavar="ROUND"), params: Path = PARAMS_OPTION) -> None:
    """Pick the next budget items with the sampler (runs/ROUND/queried.parquet).

    Example: al select r01   (after al train r01 r00)
    """
    from stages.select import run_select

    run_select(_params(params), round_name)


@app.command(rich_help_panel=STAGES)
@friendly_errors
def cluster(params: Path = PARAMS_OPTION) -> None:
    """Cluster the pool's features once, for the samplers that read clusters (margin_clustering, typiclust).

    Example: al cluster
    """
    from stages.cluster import run_cluster

    run_cluster(_params(params))


@app.command(rich_help_panel=STAGES)
@friendly_errors
def full(params: Path = PARAMS_OPTION) -> None:
    """Train the same head on every pool label once: the full-data reference.

    Example: al full
    """
    from stages.full import run_full

    run_full(_params(params))


if __name__ == "__main__":
    app()
