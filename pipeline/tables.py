"""Tables as text for pages and terminals: one formatting of a cell, shared by reports and campaigns."""

from __future__ import annotations

import polars as pl


def cell_text(value) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "-" if value is None else str(value)


def markdown_table(frame: pl.DataFrame, columns: list[str] | None = None) -> str:
    frame = frame.select(columns or frame.columns)
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell_text(v) for v in row) + " |" for row in frame.iter_rows()]
    return "\n".join(lines) + "\n"
