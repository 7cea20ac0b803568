"""source: a fingerprint of the dataset's files (data.root, data.file_list), re-computed on every
``dvc repro`` (``always_changed``) so that ``prepare`` and ``embed``, which depend on it, re-run
when the data changed, and only then (see ``al_core.data.fingerprint`` for what it reads)."""

from __future__ import annotations

import time
from pathlib import Path

from al_core.artifacts import read_json, write_json
from al_core.data.fingerprint import source_fingerprint
from pipeline.artifacts import SOURCE_FINGERPRINT
from pipeline.params import Params


def run_source(params: Params) -> None:
    """Write data/source/fingerprint.json: the dataset's name and roots, and the fingerprint of
    their files. A root that does not exist is recorded as missing (``prepare`` then says how to
    get the data). Byte-identical when nothing changed."""
    roots = [params.settings.data.root]
    file_list = params.settings.data.file_list
    if file_list:
        roots.append(file_list)
    present = [root for root in roots if Path(root).exists()]
    started = time.perf_counter()
    fingerprint = {"dataset": params.settings.data.dataset, "roots": roots,
                   "missing": [root for root in roots if root not in present], **source_fingerprint(present)}
    previous = read_json(SOURCE_FINGERPRINT) if SOURCE_FINGERPRINT.exists() else None
    write_json(SOURCE_FINGERPRINT, fingerprint)
    change = "unchanged" if previous == fingerprint else ("changed: prepare and embed will re-run" if previous else "recorded")
    print(f"source: {fingerprint['files']:,} files ({fingerprint['images']:,} images, {fingerprint['bytes'] / 1e6:,.1f} MB) "
          f"under {', '.join(roots)}, {change} ({time.perf_counter() - started:.1f} s)")
