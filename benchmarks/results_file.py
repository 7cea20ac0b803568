"""Writing a benchmark's results: the machine it ran on, then the figures, as JSON."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path


def _cpu_model_and_simd() -> tuple[str, str]:
    """The CPU's model name and its widest vector extension, from /proc/cpuinfo (Linux).

    This VM's CPU changes between sessions (AVX2-only and AVX-512 hosts were both seen), which
    moves throughput by 2x and the last bits of float results, so every result names it.
    """
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
            if flags and model:
                break
    except OSError:
        pass
    simd = next((name for name in ("avx512f", "avx2", "avx", "sse4_2") if name in flags), "unknown")
    return model, simd


def machine(**extra) -> dict:
    """CPU model, its widest SIMD extension, core count and Python, plus the benchmark's extras."""
    model, simd = _cpu_model_and_simd()
    return {"cpu": model, "simd": simd, "arch": platform.machine(), "cores": os.cpu_count(),
            "python": platform.python_version(), **extra}


def write_results(out: Path, report: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")
