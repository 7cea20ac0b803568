"""DVC never serves a stale result: every stage depends on every project module its command imports.

Each stage's ``cmd`` is ``al <command> ...``; ``stages/cli.py`` maps the command to the stage
module(s) it imports, and from there the project-internal imports are followed transitively
(module-level and function-level ones alike, the ``__init__`` of every package on the way,
which Python runs on import, and every public module of a package that imports them all through
``pkgutil``). Every file reached must be covered by one of the stage's ``deps``
(the file itself or a folder above it). ``stages/cli.py`` itself is exempt: it parses arguments
and turns errors into exit codes, and changes no result.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("al_core", "stages", "pipeline", "reporting")
CLI = ROOT / "stages" / "cli.py"


def module_file(module: str) -> Path | None:
    """The file of a project module (``al_core.samplers.base`` -> its .py or package __init__)."""
    if module.split(".")[0] not in PACKAGES:
        return None
    base = ROOT.joinpath(*module.split("."))
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return None


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(tree: ast.AST, current: str, is_package: bool) -> set[str]:
    """Every module named by an import anywhere in ``tree`` (``from a import b`` gives a and a.b)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = current.split(".") if is_package else current.split(".")[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join(package + ([node.module] if node.module else []))
            else:
                base = node.module
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def closure(start: list[Path]) -> set[Path]:
    """Project files executed by importing ``start``: their imports, transitively, and the
    ``__init__.py`` of every package that contains one of them."""
    seen: set[Path] = set()
    todo = list(start)
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        name = module_name(path)
        parts = name.split(".")
        for depth in range(1, len(parts)):
            parent = module_file(".".join(parts[:depth]))
            if parent is not None:
                todo.append(parent)
        text = path.read_text()
        tree = ast.parse(text)
        if path.name == "__init__.py" and "pkgutil.iter_modules(__path__)" in text:
            # A package that imports its public modules itself (the sampler registry).
            todo.extend(module for module in path.parent.glob("*.py") if not module.name.startswith("_"))
        for module in imported_modules(tree, name, path.name == "__init__.py"):
            target = module_file(module)
            if target is not None:
                todo.append(target)
    return seen


def command_entries() -> dict[str, list[Path]]:
    """``al`` command name -> the project modules its function in stages/cli.py imports."""
    entries = {}
    for node in ast.parse(CLI.read_text()).body:
        if not isinstance(node, ast.FunctionDef):
            continue
        name = None
        for decorator in node.decorator_list:
            # Only the top-level app's commands: sub-apps (`al study report`) have their own names.
            if (isinstance(decorator, ast.Call) and getattr(decorator.func, "attr", None) == "command"
                    and getattr(decorator.func.value, "id", None) == "app"):
                name = decorator.args[0].value if decorator.args else node.name.replace("_", "-")
        if name is None:
            continue
        modules = imported_modules(ast.Module(body=node.body, type_ignores=[]), "stages.cli", False)
        entries[name] = sorted({path for path in map(module_file, modules) if path is not None})
    return entries


def stage_commands() -> list[tuple[str, str, list[str]]]:
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    result = []
    for name, stage in stages.items():
        body = stage.get("do", stage)
        command = body["cmd"].split()
        assert command[0] == "al", f"stage {name}: expected an `al <command>` cmd, got {body['cmd']!r}"
        deps = [dep if isinstance(dep, str) else next(iter(dep)) for dep in body.get("deps", [])]
        result.append((name, command[1], deps))
    return result


def covered(path: Path, deps: list[str]) -> bool:
    relative = path.relative_to(ROOT)
    return any(relative == Path(dep) or Path(dep) in relative.parents for dep in deps)


@pytest.mark.parametrize("stage, command, deps", stage_commands(), ids=[s[0] for s in stage_commands()])
def test_every_imported_project_module_is_a_dependency(stage, command, deps):
    entries = command_entries()
    assert command in entries, f"stage {stage}: `al {command}` is not a command of stages/cli.py"
    executed = closure(entries[command]) - {CLI}
    missing = sorted(str(path.relative_to(ROOT)) for path in executed if not covered(path, deps))
    assert not missing, f"dvc.yaml stage {stage!r} imports these project files but does not depend on them: {missing}"


def test_the_analysis_follows_lazy_and_package_imports():
    # select's command imports stages.select, which imports al_core.samplers; that package's
    # __init__ imports every public sampler module through pkgutil, and vaal imports its torch
    # half inside a function. pipeline.artifacts' load_images imports al_core.data.images inside
    # a function, which runs al_core/data/__init__.py.
    executed = {str(path.relative_to(ROOT)) for path in closure(command_entries()["select"])}
    assert {"stages/select.py", "pipeline/artifacts.py", "al_core/samplers/__init__.py", "al_core/samplers/boundary.py",
            "al_core/samplers/_vaal_training.py", "al_core/__init__.py", "al_core/data/images.py",
            "al_core/data/fashion_mnist.py"} <= executed
