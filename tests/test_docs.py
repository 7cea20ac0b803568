"""The documentation stays true to the code: every `al ...` command line in the README and docs/
names a real command with real options, links between pages resolve (mkdocs build --strict, run by
test.sh), and the README stays a front door."""

from __future__ import annotations

import dataclasses
import re
import shlex
from pathlib import Path

import pytest
import typer.main

from stages.cli import app

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
COMMAND_LINE = re.compile(r"(?:^|[`\s(;&|])al ((?:[a-z][\w-]*)(?:[^`\n#|)&;]*))")


def command_lines() -> list[tuple[str, str]]:
    found = []
    for document in DOCUMENTS:
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


def generated_pages(monkeypatch) -> dict:
    """The reference pages docs/gen_reference.py writes at build time (mkdocs-gen-files stubbed)."""
    import runpy
    import sys
    import types

    written = {}

    class Page:
        def __init__(self, name, mode):
            self.name, self.mode = name, mode

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def write(self, data):
            written[self.name] = data

    monkeypatch.setitem(sys.modules, "mkdocs_gen_files", types.SimpleNamespace(open=Page))
    runpy.run_path(str(ROOT / "docs" / "gen_reference.py"))
    return written


def test_reference_pages_follow_the_code(monkeypatch):
    from al_core.samplers import SAMPLERS
    from pipeline import params

    pages = generated_pages(monkeypatch)
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
    pages = generated_pages(monkeypatch)
    assert "| `budget` | int > 0 | `250` |" in pages["reference/params.md"]
    assert "default sequential" in pages["reference/samplers.md"]
