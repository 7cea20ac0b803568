"""Paths and schemas of the pipeline's artifacts, their typed loaders, and the per-round seed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from al_core.artifacts import read_json, read_npy, read_npz, read_parquet
from al_core.errors import InputError

SOURCE_FINGERPRINT = Path("data/source/fingerprint.json")
STOP_PREDICTIONS = "stop_predictions.npy"  # runs/<round>/: the round's predicted class of each stop-set item
PREPARE_DIR = Path("data/prepare")
EMBED_DIR = Path("data/embed")
FULL_DIR = Path("data/full")
CLUSTER_DIR = Path("data/cluster")
RUNS_DIR = Path("runs")
REPORTS_DIR = Path("reports")
INIT_ROUND = "init"

POOL_TABLE = PREPARE_DIR / "pool.parquet"
IMAGES = PREPARE_DIR / "images.npy"
FEATURES = EMBED_DIR / "features.npy"
FEATURE_STATS = EMBED_DIR / "stats.npz"
EMBED_META = EMBED_DIR / "meta.json"
CLUSTERS = CLUSTER_DIR / "clusters.npy"

LABELED_COLUMNS = {"id": (pl.Int64,), "label": (pl.Int64,), "round": (pl.String,), "sampler": (pl.String,)}
QUERIED_COLUMNS = {"id": (pl.Int64,), "round": (pl.String,), "sampler": (pl.String,), "score": (pl.Float64,), "rank": (pl.Int64,)}


def round_dir(round_name: str) -> Path:
    return RUNS_DIR / round_name


@dataclass(frozen=True)
class PoolTable:
    """The prepared table: rows ordered pool, then val, then test (feature rows follow it)."""

    frame: pl.DataFrame
    num_classes: int

    @classmethod
    def load(cls) -> "PoolTable":
        frame = read_parquet(POOL_TABLE, {"id": (pl.Int64,), "label": (pl.Int64,), "split": (pl.String,)})
        meta = read_json(PREPARE_DIR / "meta.json")
        return cls(frame=frame, num_classes=int(meta["num_classes"]))

    def rows(self, split: str) -> np.ndarray:
        return np.flatnonzero(self.frame["split"].to_numpy() == split)

    def split_range(self, split: str) -> slice:
        rows = self.rows(split)
        if rows.size == 0:
            raise InputError(f"{POOL_TABLE} has no rows of split {split!r}")
        if rows[-1] - rows[0] + 1 != rows.size:
            raise InputError(f"{POOL_TABLE}: rows of split {split!r} are not contiguous")
        return slice(int(rows[0]), int(rows[-1]) + 1)

    def ids(self, split: str) -> np.ndarray:
        return self.frame["id"].to_numpy()[self.split_range(split)]

    def labels(self, split: str) -> np.ndarray:
        return self.frame["label"].to_numpy()[self.split_range(split)]

    def paths(self, split: str) -> np.ndarray | None:
        """Image file of each row of ``split`` (object array of str), or None for in-memory datasets."""
        if "path" not in self.frame.columns:
            return None
        return self.frame["path"].to_numpy()[self.split_range(split)]


def load_features() -> np.ndarray:
    """Memory-mapped ``(N, d) float16`` features aligned with the pool table's rows."""
    return read_npy(FEATURES)


def model_dir(round_name: str) -> Path:
    """runs/<round>/model: meta.json, and in fine-tuning mode the round's own features.npy."""
    return round_dir(round_name) / "model"


def round_features(round_name: str) -> np.ndarray:
    """The features the round's head acts on: its fine-tuned network's, else the frozen embedding's."""
    own = model_dir(round_name) / "features.npy"
    return read_npy(own) if own.exists() else load_features()


def load_images(table: "PoolTable", image_size: int):
    """The table's images as a uint8 array-like in row order, and a hash naming their content.

    In-memory datasets: data/prepare/images.npy (memory-mapped). Image files: an ``ImageFiles``
    view that decodes, resizes and centre-crops on access (hashed by path, size and mtime).
    """
    import hashlib

    from al_core.data.images import ImageFiles, identity

    if "feature_row" in table.frame.columns:
        raise InputError("data.dataset features holds no images: train.mode finetune and the vaal sampler need "
                         "an image dataset (imagefolder, manifest, fashion_mnist, cifar10)")
    if "path" in table.frame.columns:
        images = ImageFiles(table.frame["path"].to_list(), image_size)
        return images, hashlib.sha256(identity(images.paths).encode()).hexdigest()
    images = read_npy(IMAGES)
    return images, hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest()


def pool_positions(pool_ids: np.ndarray, ids: np.ndarray, source: Path) -> np.ndarray:
    """Positions of ``ids`` among ``pool_ids`` (any order); error if any is not in the pool. O(N log N)."""
    order = np.argsort(pool_ids, kind="stable")
    sorted_ids = pool_ids[order]
    positions = np.clip(np.searchsorted(sorted_ids, ids), 0, len(pool_ids) - 1)
    bad = sorted_ids[positions] != ids
    if bad.any():
        raise InputError(f"{source}: id {int(ids[np.argmax(bad)])} is not in the training pool of {POOL_TABLE} "
                         "(a val or test item, or an id of another dataset); re-run the stage that wrote it "
                         "(dvc repro -f <stage>), or restore it with dvc checkout")
    return order[positions]


def _unique_ids(frame: pl.DataFrame, path: Path) -> pl.DataFrame:
    repeated = frame.filter(pl.col("id").is_duplicated())["id"]
    if repeated.len():
        raise InputError(f"{path} lists id {repeated[0]} more than once; each item may be labeled or queried once "
                         "(re-run the stage that wrote it, or restore it with dvc checkout)")
    return frame


def load_labeled(round_name: str) -> pl.DataFrame:
    path = round_dir(round_name) / "labeled.parquet"
    return _unique_ids(read_parquet(path, LABELED_COLUMNS), path)


def labeled_mask(table: "PoolTable", round_name: str) -> np.ndarray:
    """``(pool size,) bool``: True for the pool items in the round's labeled set."""
    pool_ids = table.ids("pool")
    mask = np.zeros(len(pool_ids), dtype=bool)
    labeled_ids = load_labeled(round_name)["id"].to_numpy()
    mask[pool_positions(pool_ids, labeled_ids, round_dir(round_name) / "labeled.parquet")] = True
    return mask


def load_queried(round_name: str) -> pl.DataFrame:
    path = round_dir(round_name) / "queried.parquet"
    return _unique_ids(read_parquet(path, QUERIED_COLUMNS), path)


def labeled_frame(ids: np.ndarray, labels: np.ndarray, rounds: list[str], samplers: list[str]) -> pl.DataFrame:
    return pl.DataFrame(
        {"id": ids, "label": labels, "round": rounds, "sampler": samplers},
        schema={"id": pl.Int64, "label": pl.Int64, "round": pl.String, "sampler": pl.String},
    )


def queried_frame(table: "PoolTable", pool_rows: np.ndarray, scores: np.ndarray, round_name: str, sampler: str) -> pl.DataFrame:
    """The batch to send to annotators: id, round, sampler, score, rank, and each image's file
    (``path``) when the dataset is made of files. ``pool_rows`` index the pool split of ``table``."""
    frame = pl.DataFrame(
        {
            "id": table.ids("pool")[pool_rows].astype(np.int64),
            "round": [round_name] * len(pool_rows),
            "sampler": [sampler] * len(pool_rows),
            "score": scores.astype(np.float64),
            "rank": np.arange(len(pool_rows), dtype=np.int64),
        },
        schema={"id": pl.Int64, "round": pl.String, "sampler": pl.String, "score": pl.Float64, "rank": pl.Int64},
    )
    paths = table.paths("pool")
    return frame if paths is None else frame.with_columns(pl.Series("path", paths[pool_rows], dtype=pl.String))


def round_seed(seed: int, round_name: str) -> int:
    """A distinct, reproducible seed per (experiment seed, round)."""
    entropy = [seed] + [ord(char) for char in round_name]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def load_head(round_name: str) -> dict[str, np.ndarray]:
    return read_npz(round_dir(round_name) / "head.npz", required=("weight", "bias"))
