"""Writing a benchmark's results: the machine it ran on, then the figures, as JSON."""

from __future__ import annotations

import json
from pathlib import Path

from al_core.hardware import machine  # noqa: F401  (re-exported: every results file names its machine)


def write_results(out: Path, report: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")
