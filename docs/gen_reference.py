"""Reference pages generated from the code, so they cannot drift: the CLI (the typer app),
params.yaml (the params schema), the samplers and their options (the registry), the stages
(dvc.yaml) and the bad-input catalogue (the tests that check it); and the committed figures the
pages show, copied from where the commands that make them write them.

The generated files are committed under docs/, so that every link works where the pages are read:
on the code host as in the built site. `tests/test_docs.py` fails when one is not current.

    python docs/gen_reference.py           # write them
    python docs/gen_reference.py --check   # exit 1, naming them, when one is stale
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from enum import Enum
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def cell(text) -> str:
    """Text for a markdown table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def cli_page() -> str:
    import typer.main

    from stages.cli import app

    group = typer.main.get_command(app)
    lines = ["# Command line: `al`", "", "Generated from the `al` command's own definitions (`stages/cli.py`).", "",
             cell(group.help), "", "Every command takes `-h`/`--help`; `al --version` prints the version. Exit codes: 0 when done; 1 when "
             "the input or the data is at fault (one `error:` line naming the file, row or key, nothing changed: "
             "[errors](errors.md)); 2 when the command line itself is malformed (an unknown option, a missing "
             "argument), as click and git do.", ""]

    def command_section(name: str, command, panel: str) -> list[str]:
        out = [f"## al {name}", "", f"*{panel}*", ""]
        help_text = command.help or ""
        for paragraph in help_text.split("\n\n"):
            paragraph = " ".join(paragraph.split())
            if paragraph.startswith("Example: "):
                out += ["```bash", paragraph.removeprefix("Example: "), "```", ""]
            elif paragraph:
                out += [paragraph, ""]
        # typer ships its own copy of click: parameters are told apart by their kind, not their class.
        arguments = [p for p in command.params if p.param_type_name == "argument"]
        options = [p for p in command.params if p.param_type_name == "option"]
        if arguments:
            out += ["| argument | meaning |", "|---|---|"]
            out += [f"| `{(p.metavar or p.name).upper()}` | {cell(getattr(p, 'help', '') or '')} |" for p in arguments]
            out.append("")
        if options:
            out += ["| option | default | meaning |", "|---|---|---|"]
            for p in options:
                default = p.default.value if isinstance(p.default, Enum) else p.default
                shown = "" if default in (None, False) or p.is_flag and not default else f"`{default}`"
                out.append(f"| `{', '.join(p.opts)}` | {shown} | {cell(p.help or '')} |")
            out.append("")
        return out

    for name, command in group.commands.items():
        panel = getattr(command, "rich_help_panel", None) or "Commands"
        if hasattr(command, "commands"):
            lines += [f"## al {name}", "", cell(command.help), ""]
            for sub_name, sub in command.commands.items():
                lines += [line.replace("## ", "### ", 1) if line.startswith("## ") else line
                          for line in command_section(f"{name} {sub_name}", sub, panel)]
        else:
            lines += command_section(name, command, panel)
    return "\n".join(lines) + "\n"


def params_page() -> str:
    from al_core.schema import Setting
    from pipeline.params import SCHEMA

    lines = ["# Parameters: `params.yaml`", "",
             "Generated from the params schema (`pipeline/params.py`), which every `al` command checks the whole file "
             "against before any work: a key that is not listed here is an error, as is a value of the wrong type or "
             "range. `params.yaml` holds these defaults. Change keys with `al set KEY=VALUE` (keeps the file's comments) "
             "or `dvc exp run -S KEY=VALUE`. A sampler's own options go under `select.<sampler>` (see "
             "[Samplers](samplers.md)).", ""]
    top = {key: rule for key, rule in SCHEMA.items() if isinstance(rule, Setting)}
    sections = {key: rule for key, rule in SCHEMA.items() if not isinstance(rule, Setting)}

    def table(rows: dict[str, Setting], prefix: str) -> list[str]:
        out = ["| key | type and range | default | meaning |", "|---|---|---|---|"]
        for name, setting in rows.items():
            kind = setting.type_name() + (f" {setting.expected}" if setting.expected else "")
            default = "" if setting.default is None else f"`{setting.default!r}`" if isinstance(setting.default, str) else f"`{setting.default}`"
            out.append(f"| `{prefix}{name}` | {cell(kind)} | {default} | {cell(setting.help)} |")
        return out + [""]

    lines += ["## Top level", ""] + table(top, "")
    for key, rows in sections.items():
        lines += [f"## {key}", ""] + table(rows, f"{key}.")
    return "\n".join(lines) + "\n"


def samplers_page() -> str:
    from al_core.samplers import SAMPLERS

    lines = ["# Samplers", "", "Generated from the sampler registry (`al_core/samplers/`); `al samplers` prints the same. "
             "Set an option in `params.yaml` as `select.<sampler>.<option>` (e.g. `al set select.base.order=sequential`), "
             "or pass `options={...}` to `al_core.samplers.select`.", "",
             "| sampler | needs | what it picks |", "|---|---|---|"]
    for name, spec in sorted(SAMPLERS.items()):
        lines.append(f"| `{name}` | {cell(', '.join(sorted(spec.needs)) or '-')} | {cell(spec.summary)} |")
    lines.append("")
    for name, spec in sorted(SAMPLERS.items()):
        if not spec.options:
            continue
        lines += [f"## {name}", "", "| option | type, range, default | meaning |", "|---|---|---|"]
        for option, setting in spec.options.items():
            where = f"`select.{name}.{option}`" if setting.settable else f"`{option}` (library only: an array)"
            lines.append(f"| {where} | {cell(setting.describe())} | {cell(setting.help)} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def stages_page() -> str:
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    lines = ["# Stages: `dvc.yaml`", "", "Generated from `dvc.yaml`. Each stage runs one `al` command; `${key}` is a round of "
             "`params.yaml`'s `schedule` and `${item}` the round before it. Besides the artifacts listed here, each "
             "stage depends on every project module its command imports (checked by `tests/test_dvc_dependencies.py`), "
             "so DVC re-runs it when that code changes.", ""]
    code = ("al_core", "stages", "pipeline", "reporting")
    for name, stage in stages.items():
        body = stage.get("do", stage)
        deps = [d if isinstance(d, str) else next(iter(d)) for d in body.get("deps", [])]
        data = [d for d in deps if not d.startswith(code)]
        outs = [o if isinstance(o, str) else next(iter(o)) for o in body.get("outs", []) + body.get("metrics", [])]
        params = [p if isinstance(p, str) else next(iter(p)) for p in body.get("params", [])]
        lines += [f"## {name}" + (" (one per round)" if "foreach" in stage else ""), "", f"`{body['cmd']}`", ""]
        if body.get("always_changed"):
            lines += ["Runs on every `dvc repro`; its output changes only when the data does.", ""]
        lines += [f"- reads: {', '.join(f'`{d}`' for d in data) or '-'}",
                  f"- params: {', '.join(f'`{p}`' for p in params) or '-'}",
                  f"- writes: {', '.join(f'`{o}`' for o in outs)}", ""]
    return "\n".join(lines) + "\n"


def _literal(node):
    try:
        return ast.literal_eval(node)
    except ValueError:
        if isinstance(node, ast.JoinedStr):
            return "".join(v.value if isinstance(v, ast.Constant) else "…" for v in node.values)
        if isinstance(node, (ast.List, ast.Tuple)):  # a command line with a computed part: that part shown as …
            return [_literal(element) for element in node.elts]
        return "…"


CATALOGUE_CALLS = ("fails_cleanly", "warns_once")


def _catalogue_calls(node: ast.FunctionDef):
    """Each fails_cleanly / warns_once call of a test, with the ``al ...`` line it runs (computed parts as …)."""
    for call in ast.walk(node):
        if isinstance(call, ast.Call) and getattr(call.func, "id", "") in CATALOGUE_CALLS and call.args:
            command = _literal(call.args[0])
            yield call, ("al " + " ".join(map(str, command)) if isinstance(command, list) else "al …")


def _command_of(node: ast.FunctionDef) -> str:
    """The first ``al ...`` line the test runs through its catalogue calls."""
    return next((command for _, command in _catalogue_calls(node) if command != "al …"), "al …")


def _said(kind: str, excerpt: str) -> str:
    """``error: …excerpt`` (the excerpt's own leading … not doubled)."""
    return f"{kind}: " + (excerpt if excerpt.startswith("…") else "…" + excerpt)


def _parametrized(node: ast.FunctionDef, case: str) -> list[tuple[str, str, str]]:
    """Rows of a parametrized catalogue test whose parameters include the expected message."""
    for decorator in node.decorator_list:
        if not (isinstance(decorator, ast.Call) and getattr(decorator.func, "attr", "") == "parametrize"):
            continue
        names = [name.strip() for name in _literal(decorator.args[0]).split(",")]
        if "expected" not in names:
            return []
        values = _literal(decorator.args[1])
        if values == "…":
            return []
        ids = next((_literal(k.value) for k in decorator.keywords if k.arg == "ids"), None)
        rows = []
        for index, value in enumerate(values):
            label = ids[index] if isinstance(ids, list) else str(index + 1)
            rows.append((f"{case}: {label}", _command_of(node), _said("error", str(value[names.index("expected")]))))
        return rows
    return []


def error_cases() -> list[tuple[str, str, str, str]]:
    """(test, case, command, what it says) of every catalogue test, test being ``file::function``:
    fails_cleanly / warns_once calls and the parametrized params cases."""
    cases = []
    for path in sorted((ROOT / "tests").glob("test_bad_inputs*.py")):
        tree = ast.parse(path.read_text())
        tables = {d.args[1].id: node.name for node in tree.body if isinstance(node, ast.FunctionDef) for d in node.decorator_list
                  if isinstance(d, ast.Call) and getattr(d.func, "attr", "") == "parametrize" and isinstance(d.args[1], ast.Name)}
        for node in tree.body:
            if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "PARAM_CASES":
                for case in _literal(node.value):
                    key, value, command, expected = case
                    cases.append((f"{path.name}::{tables['PARAM_CASES']}", f"params `{key}: {value!r}`", "al " + " ".join(command),
                                  _said("error", expected)))
            if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "SET_CASES":
                for assignment, expected in _literal(node.value):
                    cases.append((f"{path.name}::{tables['SET_CASES']}", f"al set `{assignment}`", f"al set {assignment}",
                                  _said("error", expected)))
            if not isinstance(node, ast.FunctionDef) or not node.name.startswith("test_"):
                continue
            if node.name in (tables.get("PARAM_CASES"), tables.get("SET_CASES")):
                continue  # listed above, one row per case
            test = f"{path.name}::{node.name}"
            case = re.sub(r"^test_", "", node.name).replace("_", " ")
            expanded = _parametrized(node, case)
            if expanded:
                cases += [(test, *row) for row in expanded]
                continue
            for call, command in _catalogue_calls(node):
                if len(call.args) >= 2:
                    kind = "error" if call.func.id == "fails_cleanly" else "warning"
                    cases.append((test, case, command, _said(kind, str(_literal(call.args[1])))))
    return cases


RECORDED_MESSAGES = DOCS / "reference" / "error_messages.json"  # written by the catalogue (tests/error_messages.py)


def full_message(recorded: dict[str, list[str]], test: str, excerpt: str) -> str:
    """The line ``test`` printed (as recorded) that ``excerpt`` (``error: …part…``, … for computed
    parts) matches."""
    kind, _, text = excerpt.partition(": ")
    pattern = ".*?".join(re.escape(part) for part in text.split("…"))
    for line in recorded.get(test, []):
        if line.startswith(kind + ": ") and re.search(pattern, line):
            return line
    raise SystemExit(f"{test}: no recorded message matches {excerpt!r}; run AL_RECORD_ERRORS=1 python -m pytest "
                     "tests/test_bad_inputs*.py first")


def errors_page() -> str:
    cases = error_cases()
    recorded = json.loads(RECORDED_MESSAGES.read_text())
    lines = ["# Errors and warnings", "", "Generated from the bad-input catalogue (`tests/test_bad_inputs*.py`), which CI runs: "
             "each case breaks one thing as a user would and checks that the command stops with exit code 1 (a malformed "
             "command line, such as an unknown option, exits with 2) and one "
             "line naming the file, row or key at fault, with every artifact and the annotation store byte-identical "
             "afterwards; or, where going on is right, exit code 0 and one `warning:` line.", "",
             "Each row shows the whole line the command printed in the test: what went wrong, then what to do (the "
             "catalogue checks that the code still prints it). A message about a value in `params.yaml` names the key and "
             "what it accepts: correct it there, or with `al set KEY VALUE`, which checks a value before writing it. "
             "`…/` stands for the test's temporary folders.", "",
             f"{len(cases)} cases.", "",
             "| case | command | what it prints |", "|---|---|---|"]
    lines += [f"| {cell(case)} | `{cell(command)}` | {cell(full_message(recorded, test, excerpt)).replace('<', '&lt;')} |"
              for test, case, command, excerpt in cases]
    return "\n".join(lines) + "\n"


# Committed figures the pages show, copied from where the commands that make them write them.
FIGURES = {"results/img/learning_curves.png": "reports/figures/learning_curves.png",
           "results/img/class_histograms.png": "reports/figures/class_histograms.png",
           "results/img/balance.png": "reports/figures/balance.png",
           "results/img/study.png": "reports/study/study.png"}

PAGES = {"reference/cli.md": cli_page, "reference/params.md": params_page, "reference/samplers.md": samplers_page,
         "reference/stages.md": stages_page, "reference/errors.md": errors_page}

def generated() -> dict[str, bytes]:
    """Every generated file of docs/ (its path below docs/) and what it must hold."""
    files = {page: build().encode() for page, build in PAGES.items()}
    files.update({target: (ROOT / source).read_bytes() for target, source in FIGURES.items()})
    return files


def stale_files() -> list[str]:
    return [path for path, content in generated().items()
            if not (DOCS / path).is_file() or (DOCS / path).read_bytes() != content]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only say which generated files are stale (exit 1)")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files()
        if stale:
            print(f"stale generated docs: {', '.join(stale)}; run python docs/gen_reference.py")
        return 1 if stale else 0
    for path, content in generated().items():
        target = DOCS / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.is_file() or target.read_bytes() != content:
            target.write_bytes(content)
            print(f"wrote docs/{path}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
