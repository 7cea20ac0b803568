"""What the machine is: CPU model, widest SIMD extension, bfloat16 support, cores (for results files)."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_model_and_flags() -> tuple[str, set[str]]:
    """The CPU's model name and its feature flags, from /proc/cpuinfo (Linux; empty elsewhere)."""
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
    return model, flags


def machine(**extra) -> dict:
    """CPU model, its widest SIMD extension, its bfloat16 instructions (``amx_bf16``,
    ``avx512_bf16`` or null), core count and Python, plus ``extra``.

    This VM's CPU changes between sessions (AVX2-only and AVX-512 hosts were both seen), which
    moves throughput by 2x and the last bits of float results, so every result names it.
    """
    model, flags = cpu_model_and_flags()
    simd = next((name for name in ("avx512f", "avx2", "avx", "sse4_2") if name in flags), "unknown")
    bf16 = next((name for name in ("amx_bf16", "avx512_bf16") if name in flags), None)
    return {"cpu": model, "simd": simd, "bf16": bf16, "arch": platform.machine(), "cores": os.cpu_count(),
            "python": platform.python_version(), **extra}


def pick_device(requested: str = "auto", what: str = "backbone.device"):
    """``requested`` (``backbone.device``, or the setting ``what`` names) as a ``torch.device``:
    ``auto`` is CUDA when present (under torchrun, the GPU of this process's LOCAL_RANK), else the
    CPU; a name torch cannot use here is an InputError naming ``what``."""
    import torch

    from al_core.errors import InputError

    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        return torch.device("cpu")
    try:
        device = torch.device(requested)
    except (RuntimeError, TypeError):
        raise InputError(f"{what} {requested!r} is not a torch device name; expected auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"{what} is {requested!r} but torch sees no CUDA GPU on this machine; use auto or cpu")
    return device
