"""Write the ``schedule`` block of params.yaml (DVC templates cannot compute ``k - 1``)."""

from __future__ import annotations

from pathlib import Path

from al_core.artifacts import atomic_path
from al_core.errors import InputError
from pipeline.artifacts import INIT_ROUND


def schedule_lines(rounds: int) -> list[str]:
    if rounds < 1:
        raise InputError(f"the schedule needs at least one round, got {rounds}; give the number of rounds, e.g. al schedule 8")
    names = [f"r{index:02d}" for index in range(rounds)]
    previous = [INIT_ROUND] + names[:-1]
    return ["schedule:  # round -> previous round (written by `al schedule N`)"] + [
        f"  {name}: {before}" for name, before in zip(names, previous)
    ]


def write_schedule(path: Path, rounds: int) -> None:
    """Replace the top-level ``schedule:`` mapping in ``path``, keeping every other line."""
    if not path.is_file():
        raise InputError(f"{path} not found; run from the project root (where params.yaml is) or name it with --params")
    lines = path.read_text().splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("schedule:")), None)
    if start is None:
        raise InputError(f"{path} has no top-level 'schedule:' block")
    stop = start + 1
    while stop < len(lines) and lines[stop].startswith((" ", "\t")):
        stop += 1
    new = lines[:start] + schedule_lines(rounds) + lines[stop:]
    with atomic_path(path, suffix=".yaml") as tmp:
        tmp.write_text("\n".join(new) + "\n")
    print(f"{path}: schedule of {rounds} rounds")

