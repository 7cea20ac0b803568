"""``al campaign``: where a labeling campaign stands, round by round, for the team that pays for it.

Reads each round's batch (``runs/<round>/queried.parquet``), the ledger of sent batches
(`pipeline.ledger`), the annotation store (resolved by ``labels.conflicts``, each annotation
counted once in its latest version) and this workspace's own evaluations (each round's
``stop_predictions.npy`` and ``metrics.json``: never a committed run's). Writes
``reports/campaign.csv``, ``reports/campaign.md`` and the current ``reports/disagreements.csv``:
per round when the batch was sent (or that it was not yet), the items sent, labeled (by
annotators, or by the dataset for a seed set), still awaiting, marked unusable, the items
annotators disagree on with the label that won, the median annotation time (Label Studio's lead
time, seconds) and the labels per class; then the stopping signal. O(store + N) time and memory.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from al_core.annotations import UNUSABLE_LABEL, read_store, resolve
from al_core.artifacts import atomic_path
from al_core.stopping import stopping_point
from pipeline.annotate import class_names
from pipeline.artifacts import REPORTS_DIR, STOP_PREDICTIONS, PoolTable, load_queried, round_dir
from pipeline.label_store import LabelStore, with_dataset_labels
from pipeline.ledger import ledger_file, sent_batch, sent_rounds
from pipeline.params import Params

CAMPAIGN_CSV = REPORTS_DIR / "campaign.csv"
CAMPAIGN_MD = REPORTS_DIR / "campaign.md"


def campaign_table(store: LabelStore, rounds: list[str]) -> pl.DataFrame:
    """One row per round of ``rounds`` (`Params.rounds`) whose batch exists: counts, disagreements
    (``id:winner`` pairs), lead time, class counts."""
    table = PoolTable.load()
    names = class_names()
    history = read_store(store.file)
    labels, disagreements = resolve(history, store.conflicts)
    answered, given = with_dataset_labels(labels, table)
    lead = history.group_by("id").agg(pl.col("lead_time").median().alias("lead_time"))
    ledger = ledger_file(store.file)
    sent = sent_rounds(ledger)
    rows = []
    for round_name in rounds:
        if not (round_dir(round_name) / "queried.parquet").exists():
            break
        batch = load_queried(round_name).select("id")
        kept = sent_batch(ledger, round_name) if round_name in sent else None
        status = "no" if kept is None else sent[round_name]["sent_at"][:16].replace("T", " ")
        if kept is not None and kept["id"].to_list() != batch["id"].to_list():
            status += " (not yet written back: dvc repro)"
        got = batch.join(answered, on="id", how="inner")
        usable = got.filter(pl.col("label") >= 0)
        argued = disagreements.join(batch, on="id", how="inner")
        counts = usable.group_by("label").len()
        per_class = dict(zip(counts["label"].to_list(), counts["len"].to_list()))
        times = batch.join(lead, on="id", how="inner")["lead_time"].drop_nulls()
        rows.append({
            "round": round_name, "sent_at": status, "sent": batch.height,
            "labeled": got.height, "by_dataset": batch.join(given, on="id", how="inner").height,
            "awaiting": batch.height - got.height, "unusable": int((got["label"] == UNUSABLE_LABEL).sum()),
            "disagreements": argued.height,
            "won": " ".join(f"{item}:{winner}" for item, winner in argued.select("id", "chosen").rows()),
            "median_lead_time_s": round(float(times.median()), 1) if times.len() else None,
            "labels_per_class": " ".join(f"{names[c]}={per_class.get(c, 0)}" for c in range(len(names))),
        })
    return pl.DataFrame(rows)


def stopping_line(rounds: list[str], kappa: float, window: int) -> str | None:
    """The stopping signal of this workspace's evaluated ``rounds`` (None before two of them);
    ``kappa`` and ``window``: ``stop.kappa`` and ``stop.window``."""
    from al_core.artifacts import read_json, read_npy
    from al_core.stopping import cohen_kappa

    evaluated, labels, kappas, previous = [], [], [], None
    num_classes = len(class_names())
    for round_name in rounds:
        folder = round_dir(round_name)
        if not ((folder / "metrics.json").is_file() and (folder / STOP_PREDICTIONS).is_file()):
            break
        current = read_npy(folder / STOP_PREDICTIONS, mmap=False)
        same = previous is not None and previous.shape == current.shape
        kappas.append(round(cohen_kappa(previous, current, num_classes), 5) if same else None)
        evaluated.append(round_name)
        labels.append(read_json(folder / "metrics.json")["labels"])
        previous = current
    if len(evaluated) < 2:
        return None
    stop = stopping_point(evaluated, labels, kappas, kappa, window)
    verdict = f"stop at {stop['stop_round']} ({stop['stop_labels']} labels)" if stop["stop_round"] else "not reached yet"
    return (f"Stopping signal ({stop['rule']}): {verdict}; per round: "
            + ", ".join(f"{r}: kappa {'-' if k is None else k}" for r, k in zip(evaluated, kappas)))


def run_campaign(params: Params) -> pl.DataFrame:
    """Write reports/campaign.csv, reports/campaign.md and reports/disagreements.csv and print the table."""
    from pipeline.annotate import write_disagreements
    from pipeline.tables import markdown_table

    settings = params.settings
    store = LabelStore.of(settings.labels, params.path)
    frame = campaign_table(store, params.rounds())
    lines = [markdown_table(frame.drop("won", "labels_per_class")), ""]
    for row in frame.iter_rows(named=True):
        lines.append(f"- {row['round']}: {row['labels_per_class']}" + (f"; disagreements (item:label that won): {row['won']}"
                                                                       if row["won"] else ""))
    signal = stopping_line(list(params.schedule()), settings.stop.kappa, settings.stop.window)
    if signal:
        lines += ["", signal]
    text = "\n".join(lines) + "\n"
    write_disagreements(store.reported()[1])
    with atomic_path(CAMPAIGN_CSV, suffix=".csv") as tmp:
        frame.write_csv(tmp)
    with atomic_path(CAMPAIGN_MD, suffix=".md") as tmp:
        tmp.write_text(text)
    print(text + f"campaign: {Path(CAMPAIGN_MD)}, {Path(CAMPAIGN_CSV)}")
    return frame


def run_reopen(params: Params, round_name: str, confirm: bool) -> None:
    """``al reopen``: drop a sent round and the later ones from the ledger (``confirm``), or say what it would drop."""
    from pipeline.ledger import reopen

    store = LabelStore.of(params.settings.labels, params.path)
    labels, _ = resolve(read_store(store.file), "latest")
    print(reopen(ledger_file(store.file), params.schedule(), round_name, set(labels["id"].to_list()), confirm))
