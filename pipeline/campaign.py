"""``al campaign``: where a labeling campaign stands, round by round, for the team that pays for it.

Reads each round's batch (``runs/<round>/queried.parquet``), the annotation store (resolved by
``labels.conflicts``, each annotation counted once in its latest version) and, when the report
stage has run, the stopping signals of ``reports/rounds.csv``. Writes ``reports/campaign.csv``
and ``reports/campaign.md``: per round the items sent, labeled (by annotators, or by the dataset
for a seed set), still awaiting, marked unusable, the items annotators disagree on with the label
that won, the median annotation time (Label Studio's lead time, seconds) and the labels per
class; then the stopping signal. O(store + N) time and memory.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from al_core.annotations import UNUSABLE_LABEL, read_store, resolve
from al_core.artifacts import atomic_path
from al_core.stopping import stopping_point
from pipeline.annotate import class_names
from pipeline.artifacts import INIT_ROUND, REPORTS_DIR, PoolTable, load_queried, round_dir
from pipeline.label_store import store_file, with_dataset_labels
from pipeline.params import Params

CAMPAIGN_CSV = REPORTS_DIR / "campaign.csv"
CAMPAIGN_MD = REPORTS_DIR / "campaign.md"


def campaign_table(params: Params) -> pl.DataFrame:
    """One row per round whose batch exists: counts, disagreements (``id:winner`` pairs), lead time, class counts."""
    table = PoolTable.load()
    names = class_names()
    history = read_store(store_file(params))
    labels, disagreements = resolve(history, params.get("labels.conflicts", str, "latest"))
    answered, given = with_dataset_labels(labels, table)
    lead = history.group_by("id").agg(pl.col("lead_time").median().alias("lead_time"))
    rows = []
    for round_name in [INIT_ROUND, *params.schedule()]:
        if not (round_dir(round_name) / "queried.parquet").exists():
            break
        batch = load_queried(round_name).select("id")
        got = batch.join(answered, on="id", how="inner")
        usable = got.filter(pl.col("label") >= 0)
        argued = disagreements.join(batch, on="id", how="inner")
        counts = usable.group_by("label").len()
        per_class = dict(zip(counts["label"].to_list(), counts["len"].to_list()))
        times = batch.join(lead, on="id", how="inner")["lead_time"].drop_nulls()
        rows.append({
            "round": round_name, "sent": batch.height,
            "labeled": got.height, "by_dataset": batch.join(given, on="id", how="inner").height,
            "awaiting": batch.height - got.height, "unusable": int((got["label"] == UNUSABLE_LABEL).sum()),
            "disagreements": argued.height,
            "won": " ".join(f"{item}:{winner}" for item, winner in argued.select("id", "chosen").rows()),
            "median_lead_time_s": round(float(times.median()), 1) if times.len() else None,
            "labels_per_class": " ".join(f"{names[c]}={per_class.get(c, 0)}" for c in range(len(names))),
        })
    return pl.DataFrame(rows)


def run_campaign(params: Params) -> pl.DataFrame:
    """Write reports/campaign.csv and reports/campaign.md and print the table."""
    from reporting.pages import markdown_table

    frame = campaign_table(params)
    lines = [markdown_table(frame.drop("won", "labels_per_class")), ""]
    for row in frame.iter_rows(named=True):
        lines.append(f"- {row['round']}: {row['labels_per_class']}" + (f"; disagreements (item:label that won): {row['won']}"
                                                                       if row["won"] else ""))
    rounds_csv = REPORTS_DIR / "rounds.csv"
    if rounds_csv.exists():
        rounds = pl.read_csv(rounds_csv)
        if "kappa" in rounds.columns:
            stop = stopping_point(rounds["round"].to_list(), rounds["labels"].to_list(), rounds["kappa"].to_list(),
                                  params.get("stop.kappa", float, 0.99), params.get("stop.window", int, 3))
            lines.append("")
            lines.append(f"Stopping signal ({stop['rule']}): " + (f"stop at {stop['stop_round']} ({stop['stop_labels']} labels)"
                                                                 if stop["stop_round"] else "not reached yet") +
                         "; per round: " + ", ".join(f"{r}: kappa {k}" for r, k in rounds.select("round", "kappa").rows()))
    text = "\n".join(lines) + "\n"
    with atomic_path(CAMPAIGN_CSV, suffix=".csv") as tmp:
        frame.write_csv(tmp)
    with atomic_path(CAMPAIGN_MD, suffix=".md") as tmp:
        tmp.write_text(text)
    print(text + f"campaign: {Path(CAMPAIGN_MD)}, {Path(CAMPAIGN_CSV)}")
    return frame
