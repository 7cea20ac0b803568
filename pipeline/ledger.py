"""The campaign's ledger: which batches went to annotators. A sent batch is a fact, not a result.

In a campaign (``labels.source: annotations``) a round's batch is *sent* once ``al export`` wrote
it for annotators, or once an import brought a label for one of its items. The ledger
(``labels.store``/sent.parquet, beside the annotation store: user data, commit it with the store)
keeps each sent batch as it went out: ids in their order, scores, the sampler, when and how it was
sent. The ``init`` and ``select`` stages read it: a sent round's batch is written back as it was,
whatever the heads, settings or sampler code say now, so a label correction retrains the heads
from the corrected round on and re-selects only the rounds not sent yet. ``al reopen ROUND`` is
the one way to select a sent round again (it says what it drops first). A simulation
(``labels.source: oracle``) never reads the ledger: its rounds stay pure functions of their inputs.

Writers take turns (`al_core.artifacts.exclusive_lock`), as for the annotation store.
O(sent items) time and memory for every operation.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from al_core.annotations import utc_now
from al_core.artifacts import exclusive_lock, leftover_temporaries, write_user_table
from al_core.errors import InputError
from pipeline.artifacts import INIT_ROUND, load_queried, pool_positions

LEDGER_SCHEMA = {"id": pl.Int64, "round": pl.String, "sampler": pl.String, "score": pl.Float64, "rank": pl.Int64,
                 "path": pl.String, "sent_at": pl.String, "how": pl.String}
BATCH_COLUMNS = ("id", "round", "sampler", "score", "rank")


def ledger_file(store: Path) -> Path:
    """The ledger beside the annotation store ``store`` (``labels.store``/labels.parquet)."""
    return Path(store).parent / "sent.parquet"


def read_ledger(ledger: Path) -> pl.DataFrame:
    """Every sent item (empty when nothing was sent), in the order batches were sent."""
    if not ledger.is_file():
        return pl.DataFrame(schema=LEDGER_SCHEMA)
    try:
        frame = pl.read_parquet(ledger)
    except (OSError, pl.exceptions.PolarsError) as error:
        raise InputError(f"the ledger of sent batches {ledger} is not readable ({error}); restore it from git or DVC") from None
    if dict(frame.schema) != LEDGER_SCHEMA:
        raise InputError(f"the ledger of sent batches {ledger} has columns {dict(frame.schema)}, expected {LEDGER_SCHEMA}; "
                         "restore it from git or DVC")
    return frame


def sent_rounds(ledger: Path) -> dict[str, dict]:
    """``round -> {"items", "sent_at", "how"}`` of every sent round."""
    frame = read_ledger(ledger)
    summary = frame.group_by("round", maintain_order=True).agg(pl.len().alias("items"), pl.col("sent_at").first(),
                                                                pl.col("how").first())
    return {row["round"]: row for row in summary.iter_rows(named=True)}


def sent_batch(ledger: Path, round_name: str) -> pl.DataFrame | None:
    """The round's batch as it was sent (``queried.parquet``'s columns, rank order), or None."""
    frame = read_ledger(ledger).filter(pl.col("round") == round_name)
    if frame.height == 0:
        return None
    batch = frame.sort("rank").select(*BATCH_COLUMNS)
    return batch if frame["path"].is_null().all() else batch.with_columns(frame.sort("rank")["path"])


def _write(ledger: Path, frame: pl.DataFrame) -> None:
    write_user_table(ledger, frame, "the ledger of sent batches", "run the command again")


def record_sent(ledger: Path, round_name: str, how: str) -> bool:
    """Record ``runs/<round>/queried.parquet`` as sent (``how``: export, import, push); True when
    the round was not sent before. A round sent already keeps its first record; if the batch on
    disk differs from it (the select stage has not re-run since), that is an error: the sent batch
    is the one that counts."""
    queried = load_queried(round_name)
    with exclusive_lock(ledger, waiting=f"waiting for another writer of {ledger} to finish"):
        for leftover in leftover_temporaries(ledger):
            leftover.unlink()
        frame = read_ledger(ledger)
        if _check_unchanged(frame, ledger, round_name, queried):
            return False
        rows = queried.select(*BATCH_COLUMNS).with_columns(
            (queried["path"] if "path" in queried.columns else pl.lit(None, dtype=pl.String)).alias("path"),
            pl.lit(utc_now()).alias("sent_at"), pl.lit(how).alias("how"))
        _write(ledger, pl.concat([frame, rows.select(list(LEDGER_SCHEMA))]))
        return True


def check_unchanged(ledger: Path, round_name: str) -> None:
    """An error when the round was sent and ``runs/<round>/queried.parquet`` is not that batch."""
    _check_unchanged(read_ledger(ledger), ledger, round_name, load_queried(round_name))


def _check_unchanged(frame: pl.DataFrame, ledger: Path, round_name: str, queried: pl.DataFrame) -> bool:
    """Whether the round was sent (its batch equal to ``queried``; an error if not)."""
    before = frame.filter(pl.col("round") == round_name)
    if before.height and before.sort("rank")["id"].to_list() != queried["id"].to_list():
        raise InputError(f"runs/{round_name}/queried.parquet is not the batch of {round_name} sent on {before['sent_at'][0]} "
                         f"({ledger}): run dvc repro first (select@{round_name} writes the sent batch back), or "
                         f"`al reopen {round_name}` to select that round again")
    return before.height > 0


def rounds_after(schedule: dict[str, str], round_name: str) -> list[str]:
    """``round_name`` and every round after it in the schedule (``init`` first)."""
    order = [INIT_ROUND, *schedule]
    if round_name not in order:
        raise InputError(f"no round {round_name!r} in the schedule (rounds: {', '.join(order)})")
    return order[order.index(round_name):]


def reopen(ledger: Path, schedule: dict[str, str], round_name: str, labeled_ids: set[int], confirm: bool) -> str:
    """Drop the sent batches of ``round_name`` and every later round from the ledger (``confirm``),
    or only say what that would drop. Labels already given to those items stay in the store; they
    train a head again only if a later selection picks the items again. Returns the message."""
    later = rounds_after(schedule, round_name)
    with exclusive_lock(ledger, waiting=f"waiting for another writer of {ledger} to finish"):
        frame = read_ledger(ledger)
        dropped = frame.filter(pl.col("round").is_in(later))
        if dropped.height == 0:
            return f"reopen {round_name}: no round from {round_name} on was sent; nothing to reopen"
        rounds = dropped.group_by("round", maintain_order=True).agg(pl.len().alias("items"), pl.col("sent_at").first())
        listed = ", ".join(f"{row['round']} ({row['items']} items, sent {row['sent_at']})" for row in rounds.iter_rows(named=True))
        paid = len(set(dropped["id"].to_list()) & labeled_ids)
        what = (f"the sent batches of {listed}; {paid} of their {dropped.height} items have labels, which stay in the "
                "store but train no head unless a new selection picks those items again")
        if not confirm:
            return f"reopen {round_name} would drop {what}. Nothing changed; run `al reopen {round_name} --yes` to do it"
        _write(ledger, frame.filter(~pl.col("round").is_in(later)))
    return f"reopen {round_name}: dropped {what}. dvc repro selects these rounds again"


def kept_batch(ledger: Path, round_name: str, labeled_ids: set[int], pool_ids) -> pl.DataFrame | None:
    """The sent batch that ``select``/``init`` write back for ``round_name`` (None: not sent),
    checked against the round's labeled set and the pool."""
    batch = sent_batch(ledger, round_name)
    if batch is None:
        return None
    again = sorted(set(batch["id"].to_list()) & labeled_ids)
    if again:
        raise InputError(f"{ledger}: the sent batch of {round_name} holds items already in that round's labeled set "
                         f"(e.g. {again[:5]}), so an earlier round was reopened without it; run `al reopen {round_name}`")
    pool_positions(pool_ids, batch["id"].to_numpy(), ledger)  # every id still a pool item
    return batch
