"""The documentation stays true to the code: every `al ...` command line in the README and docs/
names a real command with real options, links between pages resolve (mkdocs build --strict, run by
test.sh), and the README stays a front door."""

from __future__ import annotations

import dataclasses
import re
import runpy
import shlex
from pathlib import Path

import pytest
import typer.main

from stages.cli import app

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
COMMAND_LINE = re.compile(r"(?:^|[`\s(;&|])al ((?:[a-z][\w-]*)(?:[^`\n#|)&;]*))")


GENERATED = {ROOT / "docs" / page for page in runpy.run_path(str(ROOT / "docs" / "gen_reference.py"))["PAGES"]}


def command_lines() -> list[tuple[str, str]]:
    """`al ...` lines of the hand-written pages (the generated reference comes from the commands themselves)."""
    found = []
    for document in DOCUMENTS:
        if document in GENERATED:
            continue
        for line in document.read_text().splitlines():
            for match in COMMAND_LINE.finditer(line):
                found.append((str(document.relative_to(ROOT)), match.group(1).strip()))
    return found


def resolve(words: list[str]):
    """The (sub)command the words name, and the words after it (typer ships its own click: duck-typed)."""
    command = typer.main.get_command(app)
    rest = list(words)
    while hasattr(command, "commands") and rest and rest[0] in command.commands:
        command = command.commands[rest.pop(0)]
    return command, rest


@pytest.mark.parametrize("where, line", command_lines())
def test_every_al_command_line_exists_with_its_options(where, line):
    words = shlex.split(line.replace("...", ""), comments=True)
    group = typer.main.get_command(app)
    assert words[0] in group.commands, f"{where}: `al {line}`: no command {words[0]!r}"
    command, rest = resolve(words)
    known = {opt for param in command.params for opt in getattr(param, "opts", [])} | {"-h", "--help"}
    for word in rest:
        if word.startswith("-") and not re.fullmatch(r"-\d+", word):
            assert word.split("=")[0] in known, f"{where}: `al {line}`: {command.name} has no option {word!r}"


def test_there_are_command_lines_to_check():
    lines = command_lines()
    assert len(lines) > 40 and any(line.startswith("export") for _, line in lines)


def test_the_readme_is_a_front_door():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    assert "bash run.sh" in readme and "bash test.sh" in readme
    for link in re.findall(r"\]\((docs/[^)#]+)", readme):
        generated = link.startswith("docs/reference/") and link != "docs/reference/api.md"
        assert generated or (ROOT / link).is_file(), f"README links to {link}, which does not exist"


def generated_pages(monkeypatch=None) -> dict[str, str]:
    """What docs/gen_reference.py would write now (path below docs/ -> text; figures left out)."""
    gen = runpy.run_path(str(ROOT / "docs" / "gen_reference.py"))
    return {page: build() for page, build in gen["PAGES"].items()}


def test_reference_pages_follow_the_code(monkeypatch):
    from al_core.samplers import SAMPLERS
    from pipeline import params

    pages = generated_pages()
    assert {"reference/cli.md", "reference/params.md", "reference/samplers.md", "reference/stages.md",
            "reference/errors.md"} <= set(pages)
    assert "| `budget` | int > 0 | `100` |" in pages["reference/params.md"]
    assert "## al export" in pages["reference/cli.md"] and "`--document-root`" in pages["reference/cli.md"]
    assert "`select.base.order`" in pages["reference/samplers.md"]
    # A changed default or sampler option shows in the next build, with no hand edit.
    monkeypatch.setitem(params.SCHEMA, "budget", params.positive(default=250, help="items queried per round"))
    spec = SAMPLERS["base"]
    order = dataclasses.replace(spec.options["order"], default="sequential")
    monkeypatch.setitem(SAMPLERS, "base", dataclasses.replace(spec, options={**spec.options, "order": order}))
    pages = generated_pages()
    assert "| `budget` | int > 0 | `250` |" in pages["reference/params.md"]
    assert "default sequential" in pages["reference/samplers.md"]


def test_the_committed_generated_pages_and_figures_are_current():
    gen = runpy.run_path(str(ROOT / "docs" / "gen_reference.py"))
    assert len(gen["generated"]()) == len(gen["PAGES"]) + len(gen["FIGURES"])
    assert gen["stale_files"]() == [], "run python docs/gen_reference.py and commit docs/"


LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def relative_links(document: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", document.read_text(), flags=re.S)  # code blocks hold no links
    return [target for target in LINK.findall(text) if not re.match(r"[a-z][a-z0-9+.-]*:", target) and not target.startswith("#")]


def test_every_relative_link_resolves_in_the_repository():
    """As a code host shows them: README.md and docs/ link to files that exist (anchors: mkdocs build --strict)."""
    links = [(document, target) for document in DOCUMENTS for target in relative_links(document)]
    assert len(links) > 60
    broken = [f"{document.relative_to(ROOT)} -> {target}" for document, target in links
              if not (document.parent / target.split("#")[0]).exists()]
    assert broken == []


def test_the_link_check_finds_a_broken_link(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("[a](gone.md) [b](https://example.org) [c](#here) ![d](img/x.png)\n```\n[e](in-code.md)\n```\n")
    assert relative_links(page) == ["gone.md", "img/x.png"]


def test_the_documented_study_grid_loads(tmp_path):
    from pipeline.study import load_grid

    page = (ROOT / "docs" / "how-to" / "compare-samplers.md").read_text()
    example = re.search(r"```yaml\n(# study.yaml.*?)```", page, flags=re.S).group(1)
    (tmp_path / "study.yaml").write_text(example)
    grid = load_grid(tmp_path / "study.yaml")
    assert grid.datasets == {"balanced": {}, "long_tailed": {"data.imbalance_ratio": 10}}
    assert len(grid.cells()) == 18 and grid.cells()[0].name == "balanced/random/seed0"


def test_the_library_example_runs(capsys):
    page = (ROOT / "docs" / "how-to" / "library.md").read_text()
    example = re.search(r"```python\n(.*?)```", page, flags=re.S).group(1)
    exec(compile(example, "docs/how-to/library.md", "exec"), {})
    assert len(capsys.readouterr().out.splitlines()) == 1
