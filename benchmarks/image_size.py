"""Which input size to embed Fashion-MNIST at: linear-probe top-1 and throughput per size.

Embeds a seeded subset (default 6,000 training / 2,000 test images) with the default backbone at
each size, trains the pipeline's linear head (al_core.train, the default params) on the
training subset with early stopping on 1,000 held-out training images, and reports test top-1
and images/s on this machine. Writes benchmarks/results/image_size.json.

    python -m benchmarks.image_size --sizes 64,96,128
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from al_core.backbones import load_backbone
from al_core.data import load_fashion_mnist
from al_core.features import extract_features
from al_core.train import HeadConfig, feature_statistics, train_linear_head


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="64,96,128")
    parser.add_argument("--train", type=int, default=6000)
    parser.add_argument("--val", type=int, default=1000)
    parser.add_argument("--test", type=int, default=2000)
    parser.add_argument("--root", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/image_size.json"))
    args = parser.parse_args()

    splits = load_fashion_mnist(args.root)
    rng = np.random.default_rng(0)
    train_images, train_labels = splits["train"]
    test_images, test_labels = splits["test"]
    chosen = rng.choice(len(train_images), size=args.train + args.val, replace=False)
    test_chosen = rng.choice(len(test_images), size=args.test, replace=False)
    images = np.concatenate([train_images[chosen], test_images[test_chosen]])
    labels = np.concatenate([train_labels[chosen], test_labels[test_chosen]])
    fit, val, test = slice(0, args.train), slice(args.train, args.train + args.val), slice(args.train + args.val, None)

    model, preprocessing, _ = load_backbone("efficientnet_lite0", "packaged:efficientnet_lite0")
    rows = []
    for size in map(int, args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as work:
            started = time.perf_counter()
            features = extract_features(model, images, image_size=size, preprocessing=preprocessing, work_dir=work)
            seconds = time.perf_counter() - started
        mean, std = feature_statistics(features[fit])
        head = train_linear_head(features[fit], labels[fit], features[val], labels[val], num_classes=10,
                                 config=HeadConfig(), seed=0, mean=mean, std=std)
        top1 = float((head.logits(features[test]).argmax(axis=1) == labels[test]).mean())
        row = {"image_size": size, "test_top1": round(top1, 4), "images_per_second": round(len(images) / seconds, 1)}
        rows.append(row)
        print(row, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"cores": os.cpu_count(), "train": args.train, "test": args.test, "sizes": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
