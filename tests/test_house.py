"""The house drawn from the imports: each floor imports only from floors below it or its own, and no
module reaches itself through its imports (top-level and function-level imports alike).

Floors, bottom up: al_core (the library), pipeline (what stages share, commands around the
pipeline), reporting and checks, stages (the DVC stages and the `al` entry point), benchmarks
and scripts (measurements and tools, free to use everything)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLOORS = {"al_core": 0, "pipeline": 1, "reporting": 2, "checks": 2, "stages": 3, "benchmarks": 4, "scripts": 4}


def modules() -> dict[str, Path]:
    found = {}
    for package in FLOORS:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """module -> the project modules it imports (a name imported from a module counts as that module)."""
    known = modules()

    def owner(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    graph = {name: set() for name in known}
    for name, path in known.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            graph[name] |= {found for found in map(owner, targets) if found not in (None, name)}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, found, counter = {}, {}, set(), [], [], [0]
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def floor(module: str) -> int:
    return FLOORS[module.split(".")[0]]


def test_no_import_goes_up_a_floor():
    graph = import_graph()
    assert len(graph) > 80 and sum(map(len, graph.values())) > 200  # the walk found the house
    up = sorted((module, target) for module, targets in graph.items() for target in targets if floor(target) > floor(module))
    assert up == [], f"imports from a lower floor to a higher one: {up}"


def test_no_module_reaches_itself():
    assert circles(import_graph()) == []


def test_the_checks_find_what_they_look_for():
    graph = {"al_core.a": {"pipeline.b"}, "pipeline.b": {"pipeline.c"}, "pipeline.c": {"pipeline.b"}, "stages.d": {"al_core.a"}}
    assert circles(graph) == [["pipeline.b", "pipeline.c"]]
    assert [(m, t) for m, ts in graph.items() for t in ts if floor(t) > floor(m)] == [("al_core.a", "pipeline.b")]


def functions_reaching_for_params() -> list[str]:
    """Functions of pipeline/ and stages/ below a command's door that take the whole ``Params`` or
    read its settings (``params.settings``, ``.data``, ``.path``, ``.schedule()``). Doors are the
    commands' ``run_*`` functions and the CLI; below them, functions take plain typed values."""
    found = []
    for package in ("pipeline", "stages"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.name == "cli.py" and package == "stages":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or node.name.startswith("run_"):
                    continue
                arguments = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
                takes = [a.arg for a in arguments if a.annotation is not None and ast.unparse(a.annotation) == "Params"]
                reads = [f"params.{n.attr}" for n in ast.walk(node) if isinstance(n, ast.Attribute)
                         and isinstance(n.value, ast.Name) and n.value.id == "params"
                         and n.attr in ("settings", "data", "path", "schedule", "rounds")]
                if takes or reads:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({', '.join(takes + sorted(set(reads)))})")
    return found


def test_settings_are_read_once_at_each_commands_door():
    assert functions_reaching_for_params() == []
