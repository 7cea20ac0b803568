"""Write Fashion-MNIST as the image folder of an unlabeled labeling campaign (the Label Studio tutorial, docs/tutorials/label-studio.md).

    python scripts/fashion_mnist_folder.py images --pool 3000 --val 300 --test 1000

``images/pool/*.png`` (unlabeled: the files carry no class), ``images/val/<class>/*.png`` and
``images/test/<class>/*.png`` (labeled), and ``images_truth.csv`` beside the folder (path,label
of every pool file) for simulating annotators; a real campaign has no such file. Reads the IDX
files of the Debian package dataset-fashion-mnist (or ``--root``); seeded.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import polars as pl
from PIL import Image

from al_core.data.fashion_mnist import DEBIAN_ROOT, FASHION_MNIST_CLASSES, load_fashion_mnist


def folder_name(name: str) -> str:
    return name.replace("/", "_").replace(" ", "_")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--root", default=DEBIAN_ROOT)
    parser.add_argument("--pool", type=int, default=3000)
    parser.add_argument("--val", type=int, default=300)
    parser.add_argument("--test", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    splits = load_fashion_mnist(args.root)
    rng = np.random.default_rng(args.seed)
    train_images, train_labels = splits["train"]
    test_images, test_labels = splits["test"]
    chosen = rng.permutation(train_labels.shape[0])[: args.pool + args.val]
    truth = []
    for position, index in enumerate(chosen):
        name = folder_name(FASHION_MNIST_CLASSES[train_labels[index]])
        if position < args.pool:
            path = args.out / "pool" / f"{index:05d}.png"
            truth.append({"path": str(path.resolve()), "label": name})
        else:
            path = args.out / "val" / name / f"{index:05d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(train_images[index]).save(path)
    for index in rng.permutation(test_labels.shape[0])[: args.test]:
        path = args.out / "test" / folder_name(FASHION_MNIST_CLASSES[test_labels[index]]) / f"{index:05d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(test_images[index]).save(path)
    truth_file = args.out.parent / f"{args.out.name}_truth.csv"
    pl.DataFrame(truth).write_csv(truth_file)
    print(f"{args.out}: {args.pool} unlabeled pool images, {args.val} val and {args.test} test images in "
          f"{len(FASHION_MNIST_CLASSES)} class folders; the pool's hidden labels in {truth_file}")


if __name__ == "__main__":
    main()
