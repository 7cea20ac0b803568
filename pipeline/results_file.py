"""Writing a benchmark's (or a check's) results: the machine it ran on, the command, the date and the code, then the figures, as JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

from al_core.artifacts import atomic_path
from al_core.hardware import machine  # noqa: F401  (re-exported: every results file names its machine)


def code_commit() -> str:
    """The git commit the code ran at, with ``+changes`` when the working tree differed from it."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "al_core", "stages", "pipeline",
                                "benchmarks"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return commit + ("+changes" if dirty else "")


def command_line(argv: list[str] | None = None) -> str:
    """``python -m package.module ARGS`` as it was run (``sys.argv[0]`` is the module's file path)."""
    argv = sys.argv if argv is None else argv
    script = Path(argv[0]).resolve()
    try:
        script = script.relative_to(Path.cwd().resolve())
    except ValueError:
        pass
    return "python -m " + script.with_suffix("").as_posix().replace("/", ".") + "".join(f" {arg}" for arg in argv[1:])


def stamp(command: str | None = None) -> dict:
    """What every results file records: the machine, the command that made it (default: this
    process's ``python -m ...`` line), the date and the git commit."""
    return {"machine": machine(), "command": command_line() if command is None else command, "date": date.today().isoformat(),
            "commit": code_commit()}


def write_results(out: Path, report: dict) -> None:
    """Write ``report`` to ``out`` with `stamp` (each of its keys kept when the report gives it already)."""
    stamped = stamp()
    stamped.update(report)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out, suffix=".json") as tmp:
        tmp.write_text(json.dumps(stamped, indent=2) + "\n")
    print(f"wrote {out}")
