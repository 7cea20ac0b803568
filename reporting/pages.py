"""index.html and summary.md of the comparison report: the figures and tables, no network needed."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import polars as pl

from al_core.artifacts import atomic_path
from pipeline.tables import cell_text, markdown_table

CAPTIONS = {
    "learning_curves": "Test accuracy against labels used, one line per sampler (mean over seeds with a 95% "
                       "t-interval band when several seeds exist). Dashed: the same head trained on every pool label.",
    "balance": "Class imbalance ratio (most / least labeled class; an unlabeled class counts as 1) and normalised "
               "entropy of the labeled set's class distribution, per round.",
    "class_histograms": "Labels per class of the labeled set, classes sorted from least to most labeled "
                        "(mean over seeds of each seed's sorted counts), for rounds x samplers.",
}
TABLE_TITLES = {
    "labels_needed": "Labels needed to reach a fraction of the full-data top-1 (paper Table 3)",
    "experiments": "Experiments",
    "left_out": "Runs left out, and why",
}
# Marks <body data-images-loaded="k/n">: how many figures actually decoded (read by the screenshot check).
IMAGE_CHECK = """<script>
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var loaded = images.filter(function (img) { return img.complete && img.naturalWidth > 0; }).length;
  document.body.setAttribute("data-images-loaded", loaded + "/" + images.length);
});
</script>"""


def _html_table(frame: pl.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(column)}</th>" for column in frame.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell_text(v))}</td>" for v in row) + "</tr>" for row in frame.iter_rows())
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def write_pages(comparison, tables: dict[str, pl.DataFrame], figures: dict[str, list[Path]], out: Path) -> Path:
    """Write ``out/index.html`` and ``out/summary.md``; both link figures by relative path."""
    samplers = ", ".join(comparison.groups)
    experiments = comparison.rounds["experiment"].n_unique()
    intro = f"{experiments} experiment(s); samplers: {samplers}. Written by `al report`."
    html_parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Active learning report</title>",
        "<style>body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}"
        "img{max-width:100%;border:1px solid #ddd}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f4f4f4}</style>",
        "</head><body>",
        "<h1>Active learning report</h1>",
        f"<p>{html.escape(intro)}</p>",
    ]
    markdown_parts = ["# Active learning report", "", intro, ""]
    for name, paths in figures.items():
        svg = next(p for p in paths if p.suffix == ".svg").name
        png = next(p for p in paths if p.suffix == ".png").name
        title = name.replace("_", " ").capitalize()
        html_parts.append(
            f"<h2>{title}</h2><figure><img src='{svg}' alt='{title}'>"
            f"<figcaption>{html.escape(CAPTIONS[name])} (<a href='{png}'>PNG</a>, <a href='{svg}'>SVG</a>)</figcaption></figure>"
        )
        markdown_parts += [f"## {title}", "", f"![{title}]({png})", "", CAPTIONS[name], ""]
    for name, frame in tables.items():
        html_parts.append(f"<h2>{html.escape(TABLE_TITLES[name])}</h2>{_html_table(frame)}")
        markdown_parts += [f"## {TABLE_TITLES[name]}", "", markdown_table(frame)]
    html_parts += [IMAGE_CHECK, "</body></html>"]
    index = out / "index.html"
    with atomic_path(index, suffix=".html") as tmp:
        tmp.write_text("\n".join(html_parts) + "\n")
    with atomic_path(out / "summary.md", suffix=".md") as tmp:
        tmp.write_text("\n".join(markdown_parts))
    return index


CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")


def chromium_binary() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def check_in_browser(index: Path, screenshot: Path | None = None) -> tuple[int, int]:
    """Open ``index`` in headless Chromium; return (figures decoded, figures on the page).

    Reads the ``data-images-loaded`` mark the page's script sets once loaded; also writes a
    screenshot when asked. Raises InputError when Chromium is missing or the page has no mark.
    """
    from al_core.errors import InputError

    binary = chromium_binary()
    if binary is None:
        raise InputError("headless check needs Chromium: apt-get install chromium")
    with tempfile.TemporaryDirectory() as profile:
        common = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}"]
        url = Path(index).resolve().as_uri()
        dom = subprocess.run([*common, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
        if screenshot is not None:
            subprocess.run([*common, f"--screenshot={screenshot}", "--window-size=1300,2600", url],
                           capture_output=True, timeout=120, check=True)
    mark = re.search(r'data-images-loaded="(\d+)/(\d+)"', dom)
    if mark is None:
        raise InputError(f"{index} did not finish loading in Chromium (no data-images-loaded mark)")
    return int(mark.group(1)), int(mark.group(2))
